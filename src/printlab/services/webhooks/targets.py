"""Where a webhook endpoint's address leads, checked: every address its name resolves to must be allowed
(`domain.webhooks.refused_address`), at registration and again before each attempt (a name may be
pointed somewhere else later), and the request then goes to the address that was checked."""

from __future__ import annotations

import socket

from printlab.domain.webhooks import Target, WebhookRuleError, refused_address


class NameNotFound(WebhookRuleError):
    """The endpoint's name doesn't resolve (now): when sending, a failure worth trying again."""


def resolve(target: Target) -> list[str]:
    """The network addresses the target's host stands for (itself when it is one). Raises
    NameNotFound when the name doesn't resolve."""
    if target.is_ip:
        return [target.host]
    try:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise NameNotFound(f"The name {target.host} can't be found; check the address.") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise NameNotFound(f"The name {target.host} can't be found; check the address.")
    return addresses


def checked_addresses(target: Target, *, allow_private: bool) -> list[str]:
    """The target's addresses when every one of them may be sent to. Raises WebhookRuleError naming the
    first refused one (all must pass: a name with one private address among public ones is refused)."""
    addresses = resolve(target)
    for address in addresses:
        reason = refused_address(address, allow_private=allow_private)
        if reason is not None:
            hint = (
                ""
                if allow_private
                else " Tick “Allow an address on the lab's own network” if it belongs there."
            )
            raise WebhookRuleError(f"PrintLab won't send to {target.host}: {reason}.{hint}")
    return addresses
