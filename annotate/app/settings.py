"""Where the app finds its database and admin password (environment first, then Streamlit secrets)."""

from __future__ import annotations

import os
from pathlib import Path

# In the working directory, never inside the installed package (site-packages).
DEFAULT_DB = Path("annotations.db")


def _secret(key: str) -> str | None:
    try:
        import streamlit as st

        value = st.secrets.get(key)
    except Exception:  # no secrets.toml: Streamlit raises rather than returning None
        return None
    return str(value) if value else None


def db_path() -> Path:
    """NLE_DB, else secrets `db_path`, else annotations.db in the working directory."""
    return Path(os.environ.get("NLE_DB") or _secret("db_path") or DEFAULT_DB)


def load_demo_when_new() -> bool:
    """NLE_DEMO=1 (set by `serve --demo`) loads the demo study into a database that has none."""
    return os.environ.get("NLE_DEMO", "") not in ("", "0", "false")


def admin_password() -> str | None:
    """NLE_ADMIN_PASSWORD, else secrets `admin_password`; None disables the researcher pages."""
    return os.environ.get("NLE_ADMIN_PASSWORD") or _secret("admin_password")
