"""Who may do what: roles and their permissions, checked by the services for every action.

The UI hides what a role cannot do, but that is a convenience only: the service refuses the
step whatever calls it (a button, the CLI, a test). Four eyes — nobody approves a case they
received or decided — is not a permission: it holds for every role and is checked beside it
(console.review) and again by the database (migration 0005's trigger).
"""
from __future__ import annotations

from console.context import Actor
from console.errors import NotAllowed

# One name per thing a person can do at a station.
RECEIVE = "receive"            # scan and weigh parcels, scan items, grade, undo
DECIDE = "decide"              # propose and record decisions (refunds wait for review by policy)
REVIEW = "review"              # see the review queue, approve, change the amount, reject
VIEW_PII = "view_pii"          # see a customer's e-mail and phone unmasked (logged)
MANAGE_USERS = "manage_users"  # add users, reset PINs, set badges, disable users
MANAGE_POLICY = "manage_policy"  # back-test and activate policy files
PRINT = "print"                # print and reprint labels, slips, receipts
AUDIT = "audit"                # verify the audit chain

_EVERYONE = frozenset({RECEIVE, DECIDE, PRINT})
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "clerk": _EVERYONE,
    "associate": _EVERYONE,
    "supervisor": _EVERYONE | {REVIEW, VIEW_PII, AUDIT},
    "admin": _EVERYONE | {REVIEW, VIEW_PII, AUDIT, MANAGE_USERS, MANAGE_POLICY},
}

_WHAT = {
    RECEIVE: "receive returns", DECIDE: "decide returns", REVIEW: "review and approve cases",
    VIEW_PII: "see customers' contact details", MANAGE_USERS: "manage users",
    MANAGE_POLICY: "change the policy", PRINT: "print", AUDIT: "verify the audit trail",
}


def allowed(actor: Actor, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(actor.role, frozenset())


def require(actor: Actor, permission: str) -> None:
    """Raise ``NotAllowed`` with a message that says who may do it instead."""
    if permission not in _WHAT:
        raise ValueError(f"unknown permission {permission!r}")
    if allowed(actor, permission):
        return
    roles = [role for role, granted in ROLE_PERMISSIONS.items() if permission in granted]
    article = "an" if roles[0][0] in "aeiou" else "a"
    raise NotAllowed(f"{actor.display_name} is signed in as {actor.role}; only {article} "
                     f"{' or '.join(roles)} may {_WHAT[permission]}. Ask one to sign in.")
