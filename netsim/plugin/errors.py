"""Error replies of the plugin protocol, and the errors a client raises
for them.

A plugin's error reply is ``{"Err": message}``. netsim's server adds
``"NetsimKind"`` (the error's category: conflict, not-found...), which
Docker ignores; netsim's client then raises a :class:`PluginReplyError`
that is *also* of that category, so ``except ConflictError`` works the
same whether a driver runs in-process or behind a socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from netsim.errors import (
    ConflictError,
    ForbiddenError,
    InvalidParameterError,
    NetsimError,
    NoSpaceError,
    NotFoundError,
    NotImplementedByDriverError,
    PluginReplyError,
    UnavailableError,
)

#: netsim's own extension of an error reply: the error category, so that an
#: error crossing the socket keeps its kind. Docker ignores unknown fields.
KIND_FIELD = "NetsimKind"


class PluginReplyInvalidError(PluginReplyError, InvalidParameterError):
    kind = InvalidParameterError.kind


class PluginReplyNotFoundError(PluginReplyError, NotFoundError):
    kind = NotFoundError.kind


class PluginReplyForbiddenError(PluginReplyError, ForbiddenError):
    kind = ForbiddenError.kind


class PluginReplyConflictError(PluginReplyError, ConflictError):
    kind = ConflictError.kind


class PluginReplyNoSpaceError(PluginReplyError, NoSpaceError):
    kind = NoSpaceError.kind


class PluginReplyUnavailableError(PluginReplyError, UnavailableError):
    kind = UnavailableError.kind


class PluginReplyNotImplementedError(PluginReplyError, NotImplementedByDriverError):
    kind = NotImplementedByDriverError.kind


# Most specific category first: the first base an exception matches wins.
_REPLY_ERRORS: Mapping[str, tuple[type[NetsimError], type[PluginReplyError]]] = MappingProxyType(
    {
        NoSpaceError.kind: (NoSpaceError, PluginReplyNoSpaceError),
        UnavailableError.kind: (UnavailableError, PluginReplyUnavailableError),
        ForbiddenError.kind: (ForbiddenError, PluginReplyForbiddenError),
        ConflictError.kind: (ConflictError, PluginReplyConflictError),
        NotFoundError.kind: (NotFoundError, PluginReplyNotFoundError),
        InvalidParameterError.kind: (InvalidParameterError, PluginReplyInvalidError),
        NotImplementedByDriverError.kind: (NotImplementedByDriverError, PluginReplyNotImplementedError),
    }
)


def error_category(exc: BaseException) -> str:
    """The category an exception belongs to ("" when none): kernel errors
    report their category (EEXIST → conflict), not their errno."""
    for kind, (base, _reply) in _REPLY_ERRORS.items():
        if isinstance(exc, base):
            return kind
    return ""


def error_reply(exc: BaseException) -> dict[str, str]:
    """The body of a plugin's error reply for ``exc``."""
    reply = {"Err": str(exc) or type(exc).__name__}
    category = error_category(exc)
    if category:
        reply[KIND_FIELD] = category
    return reply


def reply_error(message: str, *, kind: str, plugin: str, call: str) -> PluginReplyError:
    """A PluginReplyError that is also of the category ``kind`` the plugin
    reported (plain PluginReplyError for plugins that report none)."""
    entry = _REPLY_ERRORS.get(kind)
    cls = entry[1] if entry else PluginReplyError
    return cls(message, plugin=plugin, call=call)
