"""Entry point Pulumi's language host runs for ``main: infra/`` (as a script, not a module).

Absolute imports work because the repository is installed (editable) into ``.venv``.
"""

from __future__ import annotations

from infra.program import program

program()
