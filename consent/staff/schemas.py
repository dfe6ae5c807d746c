"""Request and response shapes of staff sign-in and the registry (admin) API.

``X`` holds the fields shared by the others, ``XCreate`` and ``XUpdate`` are request
bodies, ``XRead`` is what the API answers. Fields named ``*_secret``, ``initial_password``
or ``totp_uri`` are returned once, by the request that created them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from phr.jsontypes import UtcDateTime

__all__ = [
    "Client",
    "ClientCreate",
    "ClientCreated",
    "ClientRead",
    "Organization",
    "OrganizationCreate",
    "OrganizationRead",
    "OrganizationUpdate",
    "Staff",
    "StaffCreate",
    "StaffCreated",
    "StaffLogin",
    "StaffRead",
    "StaffSignedIn",
    "StaffUpdate",
]

OrganizationKind = Literal[
    "hospital",
    "clinic",
    "pharmacy",
    "ems",
    "nurse_station",
    "municipality",
    "insurer",
    "service_provider",
    "shelter",
    "platform",
]
Role = Literal[
    "doctor",
    "nurse",
    "pharmacist",
    "paramedic",
    "shelter_staff",
    "clerk",
    "analyst",
    "administrator",
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------- sign-in


class StaffLogin(_Input):
    organization_id: str = Field(min_length=1, max_length=64)
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp: str = Field(min_length=1, max_length=16, description="the authenticator's code")
    # Where a browser goes after a form sign-in (a path on this server only); ``return_to``
    # is the name the OpenID Connect sign-in page uses.
    next: str | None = Field(default=None, max_length=4096)
    return_to: str | None = Field(default=None, max_length=4096)


class StaffSignedIn(BaseModel):
    id: str
    organization_id: str
    role: str


# --------------------------------------------------------------------------- organisations


class Organization(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    kind: OrganizationKind
    identifier_system: str | None = Field(default=None, max_length=255)
    identifier_value: str | None = Field(default=None, max_length=64)


class OrganizationCreate(Organization, _Input):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class OrganizationUpdate(_Input):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    active: bool | None = None


class OrganizationRead(Organization):
    model_config = ConfigDict(from_attributes=True)

    id: str
    active: bool
    created_at: UtcDateTime


# --------------------------------------------------------------------------- staff


class Staff(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    display_name: str = Field(min_length=1, max_length=255)
    role: Role


class StaffCreate(Staff, _Input):
    # Omitted: a random initial password is generated and returned once.
    password: str | None = Field(default=None, min_length=12, max_length=1024)


class StaffUpdate(_Input):
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    role: Role | None = None
    active: bool | None = None
    reset_totp: bool = False
    reset_password: bool = False


class StaffRead(Staff):
    model_config = ConfigDict(from_attributes=True)

    id: str
    organization_id: str
    active: bool
    locked_until: UtcDateTime | None
    created_at: UtcDateTime
    last_login_at: UtcDateTime | None


class StaffCreated(StaffRead):
    """An account just created or reset, with what is shown only now."""

    initial_password: str | None = None
    totp_uri: str | None = Field(default=None, description="otpauth:// provisioning URI")


# --------------------------------------------------------------------------- clients


class Client(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    scopes: list[str] = Field(min_length=1, max_length=100)


class ClientCreate(Client, _Input):
    client_id: str | None = Field(
        default=None, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )


class ClientRead(Client):
    client_id: str
    organization_id: str
    grant_types: list[str]
    token_endpoint_auth_method: str
    active: bool
    created_at: UtcDateTime


class ClientCreated(ClientRead):
    client_secret: str
