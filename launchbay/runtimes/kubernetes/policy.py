"""What every space's namespace gets besides its releases: a quota, default limits, a
NetworkPolicy admitting only the space's own traffic, and (when the server runs in the
cluster) the server's rights to install charts there and nowhere else."""

from __future__ import annotations

from kubernetes import client

from launchbay.runtimes.kubernetes.errors import create
from launchbay.runtimes.kubernetes.settings import ClusterSettings


class Policy:
    def __init__(
        self,
        api: client.ApiClient,
        core: client.CoreV1Api,
        net: client.NetworkingV1Api,
        settings: ClusterSettings,
    ) -> None:
        self.api = api
        self.core = core
        self.net = net
        self.settings = settings

    def apply(self, namespace: str) -> None:
        """Quota, default limits, and a NetworkPolicy admitting only the space's own traffic.
        Idempotent: what is there already stays."""
        quota, limits = _quota(self.settings), _limits(self.settings)
        create(
            lambda: self.core.create_namespaced_resource_quota(namespace, quota),
            verb="create",
            resource="resourcequotas",
        )
        create(
            lambda: self.core.create_namespaced_limit_range(namespace, limits),
            verb="create",
            resource="limitranges",
        )
        if self.settings.service_account and self.settings.own_namespace:
            binding = _admin_binding(self.settings.service_account, self.settings.own_namespace)
            rbac = client.RbacAuthorizationV1Api(self.api)
            create(
                lambda: rbac.create_namespaced_role_binding(namespace, binding),
                verb="create",
                resource="rolebindings",
            )
        isolate = _isolation()
        create(
            lambda: self.net.create_namespaced_network_policy(namespace, isolate),
            verb="create",
            resource="networkpolicies",
        )


def _quota(settings: ClusterSettings) -> client.V1ResourceQuota:
    return client.V1ResourceQuota(
        metadata=client.V1ObjectMeta(name="launchbay-quota"),
        spec=client.V1ResourceQuotaSpec(hard=settings.quota),
    )


def _limits(settings: ClusterSettings) -> client.V1LimitRange:
    return client.V1LimitRange(
        metadata=client.V1ObjectMeta(name="launchbay-limits"),
        spec=client.V1LimitRangeSpec(
            limits=[client.V1LimitRangeItem(type="Container", default=settings.default_limits)]
        ),
    )


def _isolation() -> client.V1NetworkPolicy:
    return client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="launchbay-isolate"),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(),
            policy_types=["Ingress"],
            ingress=[
                client.V1NetworkPolicyIngressRule(
                    var_from=[client.V1NetworkPolicyPeer(pod_selector=client.V1LabelSelector())]
                )
            ],
        ),
    )


def _admin_binding(account: str, namespace: str) -> client.V1RoleBinding:
    """The built-in `admin` ClusterRole for the server's service account, in one namespace."""
    return client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="launchbay-admin"),
        role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="admin"
        ),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=account, namespace=namespace)],
    )
