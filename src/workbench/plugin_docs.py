"""Renders ``docs/plugins.md`` from ``hookspecs.py``; a test keeps the file current.

Run ``python -m workbench.plugin_docs`` after changing a hook.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from workbench import hookspecs

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"

INTRO = """\
# Plugin hook reference

Workbench is extended through [pluggy](https://pluggy.readthedocs.io/) hooks. A plugin is a
module (or any object) with functions decorated by `workbench.hookspecs.hookimpl` and named
after the hooks below. Built-in features use these same hooks: see `DEFAULT_PLUGINS` in
`src/workbench/plugins.py`.

## Loading a plugin

- **Installed package**: declare an entry point in the `workbench` group of your package's
  `pyproject.toml`:

  ```toml
  [project.entry-points.workbench]
  my_plugin = "my_package.plugin"
  ```

- **Plugins directory**: every `*.py` file in the directory given by `--plugins-dir` (or the
  `plugins_dir` setting / `WORKBENCH_PLUGINS_DIR`) is imported as a plugin.
- `workbench plugins` lists what is loaded and which hooks each plugin implements.

Hooks are called with keyword arguments only; an implementation may accept any subset of the
arguments shown. Hooks that return lists are called on every plugin and the lists are joined.

```python
from workbench.hookspecs import hookimpl

@hookimpl
def workbench_event_types():
    return [EventType("invoice.paid", 1, InvoicePaid)]
```

## Hooks
"""


def hook_names() -> list[str]:
    return sorted(
        name
        for name, fn in vars(hookspecs).items()
        if name.startswith("workbench_") and callable(fn)
    )


def render() -> str:
    parts = [INTRO]
    for name in hook_names():
        fn = getattr(hookspecs, name)
        args = ", ".join(inspect.signature(fn).parameters)
        parts.append(f"### `{name}({args})`\n\n{inspect.cleandoc(fn.__doc__ or '')}\n")
    return "\n".join(parts)


def main() -> None:
    DOC_PATH.write_text(render())
    sys.stdout.write(f"wrote {DOC_PATH}\n")


if __name__ == "__main__":
    main()
