"""The base class of the errors the command line reports as one line instead of a traceback.

It lives apart from the modules that raise them so that ``rlmaml.commands`` can catch every such
error without importing torch: the commands that need no policy (``envs``, ``plot``,
``check-env``) start in a fraction of the time.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input, an env that cannot be used, a failed worker or a diverged run: the message says
    what went wrong and what to do, so a traceback would add nothing."""
