"""Environments. Importing this package selects the headless rendering backend first."""
from collectors.envs.render import gl_info, select_backend

select_backend()

from collectors.envs.base import Env, EnvSpec  # noqa: E402
from collectors.envs.registry import canonical_id, list_ids, make, scripted_expert, spec  # noqa: E402

__all__ = ["Env", "EnvSpec", "canonical_id", "gl_info", "list_ids", "make", "scripted_expert", "select_backend", "spec"]
