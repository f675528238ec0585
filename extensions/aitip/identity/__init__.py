"""Who is calling and what they may do: roles, principals, the permission table, the user directory."""

from .permissions import PERMISSIONS, Permission, PermissionScope, permission
from .principal import Principal
from .roles import Role

__all__ = ["PERMISSIONS", "Permission", "PermissionScope", "Principal", "Role", "permission"]
