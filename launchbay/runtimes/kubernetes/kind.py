"""How a server makes its kubernetes runtime: settings, and the client imported only when
the runtime is enabled (the server starts without it otherwise)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from launchbay.domain.errors import Invalid
from launchbay.domain.template import Template
from launchbay.runtimes.base import Runtime, RuntimeContext, RuntimeKind, Unloadable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KubernetesSettings:
    """Team Spaces: on when running in a cluster, or given a kubeconfig."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace_prefix: str = "lb-"
    own_namespace: str | None = None
    base_domain: str = ""
    service_account: str | None = None


class KubernetesSection(BaseModel):
    """The server settings' `kubernetes:` section. Team Spaces are on when the server runs
    in a cluster or is given a kubeconfig."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kubeconfig: str | None = None
    context: str | None = Field(default=None, description="the kubeconfig's context")
    namespace_prefix: str = KubernetesSettings.namespace_prefix
    base_domain: str = Field(
        default=KubernetesSettings.base_domain, description="endpoints become Ingress hosts"
    )

    def settings(self, environ: Mapping[str, str]) -> KubernetesSettings | None:
        """What the runtime is made with; in a pod, the pod's own facts come from its
        environment (`LAUNCHBAY_NAMESPACE`, `LAUNCHBAY_SERVICE_ACCOUNT`)."""
        if not (self.kubeconfig or environ.get("KUBERNETES_SERVICE_HOST")):
            return None
        return KubernetesSettings(
            kubeconfig=self.kubeconfig,
            context=self.context,
            namespace_prefix=self.namespace_prefix,
            own_namespace=environ.get("LAUNCHBAY_NAMESPACE"),
            base_domain=self.base_domain,
            service_account=environ.get("LAUNCHBAY_SERVICE_ACCOUNT"),
        )


def make(context: RuntimeContext) -> Runtime | None:
    settings = context.settings.get("kubernetes")
    if not isinstance(settings, KubernetesSettings):
        return None
    try:
        from launchbay.runtimes.kubernetes.client import LimitedApiClient, load_configuration
        from launchbay.runtimes.kubernetes.helm import Helm
        from launchbay.runtimes.kubernetes.runtime import KubernetesRuntime
        from launchbay.runtimes.kubernetes.settings import ClusterSettings
    except ImportError as e:
        log.warning("the kubernetes runtime cannot load: %s", e)
        return Unloadable(
            "kubernetes",
            f"the Kubernetes client cannot be imported ({e}): `pip install kubernetes` "
            "in the server's environment (it comes with launchbay; this install lacks it)",
        )
    try:
        configuration = load_configuration(kubeconfig=settings.kubeconfig, context=settings.context)
    except Exception as e:  # the client raises several kinds for an unreadable kubeconfig
        raise Invalid(f"cannot load the Kubernetes configuration: {e}") from e
    cluster = ClusterSettings(
        namespace_prefix=settings.namespace_prefix,
        installation=context.installation,
        own_namespace=settings.own_namespace,
        base_domain=settings.base_domain,
        service_account=settings.service_account,
    )
    env = dict(os.environ) | ({"KUBECONFIG": settings.kubeconfig} if settings.kubeconfig else {})
    if settings.context:
        env["HELM_KUBECONTEXT"] = settings.context
    return KubernetesRuntime(LimitedApiClient(configuration), Helm(env=env), cluster)


def validate(template: Template) -> list[str]:
    """A template's local charts exist and pass `helm lint --strict` (no cluster needed)."""
    from launchbay.runtimes.kubernetes.helm import Helm

    problems = []
    helm: Helm | None = None
    for name, service in template.services.items():
        section = service.helm
        if section is None or section.repo or "://" in section.chart or "${" in section.chart:
            continue
        path = Path(section.chart)
        path = path if path.is_absolute() else template.folder / path
        where = f"{template.source}: services.{name}.helm.chart"
        if not (path / "Chart.yaml").is_file():
            problems.append(f"{where}: no chart at {path} (a folder with a Chart.yaml)")
            continue
        helm = helm or Helm(env={**os.environ, "HELM_CACHE_HOME": tempfile.gettempdir()})
        problems += [f"{where}: {line}" for line in helm.lint(path)]
    return problems


KIND = RuntimeKind(
    name="kubernetes",
    section="helm",
    summary="Team Spaces: a namespace per space, a Helm release per service",
    make=make,
    validate=validate,
)
