"""Roles on root fields: queries and subscriptions need `viewer`, mutations `operator`, the journal `admin`."""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from gateway.context import GraphQLInfo
from gateway.settings import Role


class RoleRequired(BasePermission):
    role: ClassVar[Role]

    def __init__(self) -> None:
        self.message = f"this needs the {self.role.value} role"
        self.error_extensions = {"code": "FORBIDDEN", "requiredRole": self.role.value, "retryable": False}

    def has_permission(self, source: Any, info: GraphQLInfo, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and principal.may(self.role)


class IsViewer(RoleRequired):
    role = Role.VIEWER


class IsOperator(RoleRequired):
    role = Role.OPERATOR


class IsAdmin(RoleRequired):
    role = Role.ADMIN


VIEWER: list[type[BasePermission]] = [IsViewer]
OPERATOR: list[type[BasePermission]] = [IsOperator]
ADMIN: list[type[BasePermission]] = [IsAdmin]
