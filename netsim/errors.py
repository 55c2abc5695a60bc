"""One error tree for everything netsim raises.

Categories mirror libnetwork's ``types`` package (bad request, not found,
forbidden, no service, internal) so callers can catch by kind whatever layer
failed. Kernel failures keep the errno Linux gave, and are *also* filed under
the matching category (EEXIST is a conflict, ENODEV is not-found...), so a
caller that only cares about the category never has to inspect errno.
"""

from __future__ import annotations

import errno as _errno


class NetsimError(Exception):
    """Root of every error netsim raises."""

    kind = "error"


class InvalidParameterError(NetsimError, ValueError):
    """The caller passed something malformed or out of range."""

    kind = "invalid-parameter"


class NotFoundError(NetsimError, LookupError):
    """The named object does not exist."""

    kind = "not-found"


class ConflictError(NetsimError):
    """The object exists already, or is in use, or the state forbids the call."""

    kind = "conflict"


class ForbiddenError(ConflictError):
    """The operation is refused by policy (e.g. overriding a built-in driver)."""

    kind = "forbidden"


class UnavailableError(NetsimError):
    """A resource is exhausted or a service cannot be reached."""

    kind = "unavailable"


class NoSpaceError(UnavailableError):
    """A pool, bitmap or range has no free element left."""

    kind = "no-space"


class StoreUnavailableError(UnavailableError):
    """A datastore's server could not be reached or did not answer in time;
    ``url`` names the store and ``operation`` the call that failed."""

    kind = "store-unavailable"

    def __init__(self, message: str, *, url: str = "", operation: str = "") -> None:
        where = " ".join(p for p in (url, operation) if p)
        super().__init__(f"store {where}: {message}" if where else message)
        self.url = url
        self.operation = operation

    def __reduce__(self) -> tuple[object, ...]:
        return (_store_unavailable, (self.args[0], self.url, self.operation))


def _store_unavailable(message: str, url: str, operation: str) -> StoreUnavailableError:
    error = StoreUnavailableError("")
    error.args, error.url, error.operation = (message,), url, operation
    return error


class NotImplementedByDriverError(NetsimError, NotImplementedError):
    """An optional driver call that this driver does not implement."""

    kind = "not-implemented"


class KernelError(NetsimError, OSError):
    """A kernel operation failed; ``errno`` is the value Linux reports."""

    kind = "kernel"

    errno: int

    def __init__(self, err: int, message: str) -> None:
        NetsimError.__init__(self, message)
        self.errno = err
        self.strerror = message

    def __str__(self) -> str:
        name = _errno.errorcode.get(self.errno, str(self.errno))
        return f"[{name}] {self.strerror}"

    def __reduce__(self) -> tuple[object, ...]:
        return (kernel_error, (self.errno, self.strerror))


class KernelExistsError(KernelError, ConflictError):
    kind = "kernel-exists"


class KernelNotFoundError(KernelError, NotFoundError):
    kind = "kernel-not-found"


class KernelInvalidError(KernelError, InvalidParameterError):
    kind = "kernel-invalid"


class KernelBusyError(KernelError, ConflictError):
    kind = "kernel-busy"


class KernelPermissionError(KernelError, ForbiddenError):
    kind = "kernel-permission"


class KernelUnreachableError(KernelError, UnavailableError):
    kind = "kernel-unreachable"


_BY_ERRNO: dict[int, type[KernelError]] = {
    _errno.EEXIST: KernelExistsError,
    _errno.EADDRINUSE: KernelExistsError,
    _errno.ENODEV: KernelNotFoundError,
    _errno.ENOENT: KernelNotFoundError,
    _errno.ESRCH: KernelNotFoundError,
    _errno.EADDRNOTAVAIL: KernelNotFoundError,
    _errno.EINVAL: KernelInvalidError,
    _errno.ERANGE: KernelInvalidError,
    _errno.EOPNOTSUPP: KernelInvalidError,
    _errno.EAFNOSUPPORT: KernelInvalidError,
    _errno.EBUSY: KernelBusyError,
    _errno.ENOTEMPTY: KernelBusyError,
    _errno.EPERM: KernelPermissionError,
    _errno.EACCES: KernelPermissionError,
    _errno.ENETUNREACH: KernelUnreachableError,
    _errno.EHOSTUNREACH: KernelUnreachableError,
}


def kernel_error(err: int, message: str) -> KernelError:
    """Build the KernelError subclass matching ``err`` (EEXIST → conflict...)."""
    return _BY_ERRNO.get(err, KernelError)(err, message)


class PluginError(NetsimError):
    """A remote plugin misbehaved; ``plugin`` and ``call`` name where."""

    kind = "plugin"

    def __init__(self, message: str, *, plugin: str = "", call: str = "") -> None:
        where = "/".join(p for p in (plugin, call) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.plugin = plugin
        self.call = call


class PluginReplyError(PluginError):
    """The plugin answered with an error (``Err``/``Error`` or a non-200)."""

    kind = "plugin-reply"


class PluginProtocolError(PluginError, InvalidParameterError):
    """The plugin's reply was malformed: bad JSON, missing or mistyped field."""

    kind = "plugin-protocol"


class PluginUnavailableError(PluginError, UnavailableError):
    """The plugin could not be reached, hung past its timeout, or died."""

    kind = "plugin-unavailable"


class ScenarioError(InvalidParameterError):
    """A scenario file is invalid; names the file and the key path."""

    kind = "scenario"

    def __init__(self, message: str, *, file: str = "", path: str = "") -> None:
        prefix = ":".join(p for p in (file, path) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file = file
        self.path = path


def error_kind(exc: BaseException) -> str:
    """A stable label for comparing failures across kernels: kind plus errno."""
    if isinstance(exc, KernelError):
        return f"{exc.kind}:{_errno.errorcode.get(exc.errno, exc.errno)}"
    if isinstance(exc, NetsimError):
        return exc.kind
    return type(exc).__name__
