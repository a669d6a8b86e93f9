"""What a space may override, and the limits on every value a user gives.

A space changes what differs from main, and only what its template allows: the version of
a service by default, env variables and helm values where the template's `overridable`
names them. Variables that change how a program loads or what it runs are refused unless
an admin marked the template `trusted`; Launchbay's own labels are refused always.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from launchbay.domain.errors import Invalid
from launchbay.domain.names import ServiceName
from launchbay.domain.template import Service, Template

# Names that make a program load or run something else: the dynamic loader, interpreters'
# start-up options, shells' start-up files, and programs started by name.
LOADER_ENV = (
    "LD_*", "DYLD_*", "GCONV_PATH", "GLIBC_TUNABLES", "MALLOC_*", "LOCPATH", "NLSPATH",
    "HOSTALIASES", "RES_OPTIONS", "PATH", "HOME", "SHELL", "ENV", "BASH_ENV", "BASH_FUNC_*",
    "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS", "CDPATH", "PYTHON*", "PERL5*",
    "PERLLIB", "PERLIO*", "RUBYOPT", "RUBYLIB", "GEM_*", "NODE_OPTIONS", "NODE_PATH",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH", "BROWSER",
    "PAGER", "EDITOR", "VISUAL", "GIT_*", "TMPDIR",
    # Configuration files and modules libraries load, and what decides trust and egress.
    "OPENSSL_*", "SSL_CERT_*", "*_CA_BUNDLE", "*_CA_CERTS", "*_CA_FILE", "CURL_HOME",
    "WGETRC", "NETRC", "*_PROXY", "LUA_*", "PHPRC", "PHP_INI_*", "ZDOTDIR", "XDG_*",
    "TERMINFO*", "TZDIR", "LOCALDOMAIN", "KRB5*", "GNUTLS_*", "NSS_*", "DOTNET_*",
    "CORECLR_*", "COMPLUS_*", "GODEBUG", "GOFLAGS", "RUSTFLAGS", "R_PROFILE*", "R_ENVIRON*",
    "TCLLIBPATH", "GDK_*", "GTK_*", "QT_*", "LIBGL_*", "MESA_*",
)  # fmt: skip
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ALWAYS_REFUSED_ENV = ("LAUNCHBAY_*", "BAY_*")


@dataclass(frozen=True)
class Limits:
    """Sizes every user-given value is held to, checked before anything is written."""

    value_bytes: int = 8 * 1024  # one parameter or override value
    entries: int = 100  # parameters, or overrides, in one request


def check_values(kind: str, values: Mapping[str, str], limits: Limits) -> None:
    if len(values) > limits.entries:
        raise Invalid(f"{len(values)} {kind}s given; at most {limits.entries} are allowed")
    for key, value in values.items():
        if "\0" in key or "\0" in value:
            raise Invalid(f"{kind} {printable(key)}: a NUL character cannot be passed to a service")
        size = len(value.encode())
        if size > limits.value_bytes:
            raise Invalid(
                f"{kind} {key!r} is {size:,} bytes; each value may be at most "
                f"{limits.value_bytes:,} bytes"
            )


def printable(text: str) -> str:
    """A user's key as an error shows it: control characters escaped (`\\n`, `\\0`)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def check_override(template: Template, service_name: str, key: str) -> None:
    """Refuse `--set SERVICE.KEY` unless the template allows it, naming what it allows."""
    service = template.services[ServiceName(service_name)]
    allowed = service.overridable
    where = f"--set {printable(f'{service_name}.{key}')}"
    if key == "version":
        if service.compose_file:
            raise Invalid(
                f"{where}: {service_name} runs what its Compose file says; give the file a "
                "parameter (an image tag as ${NAME}) and pass it with --param"
            )
        if not allowed.version:
            raise Invalid(f"{where}: template {template.name!r} does not let spaces change it")
        return
    kind, _, name = key.partition(".")
    if kind == "env" and not ENV_NAME.fullmatch(name):
        raise Invalid(
            f"{where}: {printable(name)} is not an environment variable name (letters, "
            "digits and _, not starting with a digit)"
        )
    patterns = allowed.env if kind == "env" else allowed.values
    if not any(fnmatchcase(name, p) for p in patterns):
        raise Invalid(f"{where}: not overridable; {_allowed(service)}")
    if kind == "env":
        if any(fnmatchcase(name, p) for p in ALWAYS_REFUSED_ENV):
            raise Invalid(f"{where}: Launchbay's own variables cannot be overridden")
        if not template.trusted and any(fnmatchcase(name.upper(), p) for p in LOADER_ENV):
            raise Invalid(
                f"{where}: {name} changes how programs load or what they run; only a template "
                "an admin marked `trusted: true` may let spaces set it"
            )


def _allowed(service: Service) -> str:
    allowed = service.overridable
    names = (["version"] if allowed.version else []) + [f"env.{p}" for p in allowed.env]
    names += [f"values.{p}" for p in allowed.values]
    return (
        "this service allows "
        + (", ".join(names) if names else "nothing")
        + " (its template's `overridable`)"
    )
