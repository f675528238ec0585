"""JupyterHub's admin page in the request's language. The page is a React app bundled as JavaScript
(``static/js/admin-react.js``), out of the templates' reach: its words are listed here, word for word as
JupyterHub 6.1's bundle writes them (tests/hub check each against the bundle), and the ``admin.html`` override
gives the page, in a language other than English, a small script that writes each text it shows (and each
placeholder and tooltip) in that language as React draws it. Values the app puts into a sentence (a count, a
user name) are {placeholders}; what the app shows as data (user and group names, a user's fields) stays as is.
"""

from __future__ import annotations

import re

from ..i18n import N_

# Texts of the admin app's views (users, add users, edit user, groups, new group, edit group), its buttons'
# tooltips and its inputs' placeholders.
ADMIN_PAGE_WORDS = (
    N_("Start All"), N_("Stop All"), N_("Shutdown Hub"), N_("Only Active Servers"), N_("Add Users"),
    N_("Manage Groups"), N_("User"), N_("Server"), N_("Last Activity"), N_("Server Start Time"),
    N_("Actions"), N_("Never"), N_("Start Server"), N_("Stop Server"), N_("Delete Server"),
    N_("Server is pending"), N_("Spawn Page"), N_("Access Server"), N_("Edit User"), N_("Displaying"),
    N_("of {total}"), N_("Previous"), N_("Next"), N_("Items per page:"), N_("Admin"), N_("Back"),
    N_("Editing user"), N_("Apply"), N_("Delete user"), N_("Groups"), N_("no groups created..."),
    N_("New Group"), N_("{count} users"), N_("Add user"), N_("Key"), N_("Value"), N_("Delete"), N_("Add Item"),
    N_("Editing Group"), N_("Manage group members"), N_("Manage group properties"), N_("Delete Group"),
    N_("Create Group"), N_("Create"),
    N_("Search Users"), N_("usernames separated by line"), N_("updated username"), N_("group name..."),
    N_("Add by username"), N_("Start all default servers on the current page"),
    N_("Stop all servers including named servers on the current page"),
    N_("check to only show running servers, otherwise show all"),
    N_("{count} seconds ago"), N_("{count} minutes ago"), N_("{count} hours ago"), N_("{count} days ago"),
    N_("{count} months ago"), N_("{count} years ago"),
)
# What the app says when something fails (an alert over the view).
ADMIN_PAGE_ALERTS = (
    N_("Failed to update user list."), N_("Failed to start servers."), N_("Failed to stop servers."),
    N_("Failed to update group list."), N_("Duplicate keys found!"), N_("Failed to edit group."),
    N_("Failed to delete group."), N_("Could not update groups list."), N_("Failed to create group."),
    N_("Failed to update users."), N_("Failed to create user."), N_("Could not update users list."),
    N_("Failed to edit user."), N_("Failed to start server."), N_("Failed to stop server."),
    N_("Failed to delete server."),
    N_("Failed to start {count} server. Is it already running?"),
    N_("Failed to start {count} servers. Are they already running?"),
    N_("Failed to stop {count} server. Is it already stopped?"),
    N_("Failed to stop {count} servers. Are they already stopped?"),
    N_('"{name}" is not a valid JupyterHub user.'),
)

# Words the platform's catalog already holds in another sense ("Profile": an evaluation's profiling), each with
# the catalog entry of its sense here.
ADMIN_PAGE_WORDS_IN_CONTEXT = {
    "Profile": N_("Profile (the server options a user picked on the spawn page)"),
}


def admin_page_messages() -> list[tuple[str, str]]:
    """(what the app shows, its catalog entry) of every text listed here."""
    return [*((message, message) for message in (*ADMIN_PAGE_WORDS, *ADMIN_PAGE_ALERTS)),
            *ADMIN_PAGE_WORDS_IN_CONTEXT.items()]


def javascript_pattern(message: str) -> str:
    """``message`` as a JavaScript regular expression matching the whole text, each {placeholder} a named
    group."""
    escaped = re.sub(r"[.*+?^${}()|[\]\\/]", lambda found: "\\" + found.group(0), message)
    return "^" + re.sub(r"\\\{(\w+)\\\}", r"(?<\1>.+?)", escaped) + "$"
