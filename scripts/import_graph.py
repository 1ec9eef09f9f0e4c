"""Imports between our apps, per pair: at module level and inside functions (tests excluded).

    python3 scripts/import_graph.py [ROOT]

The table in docs/architecture.md ("Layers") was printed by this script; import-linter
(`lint-imports`, run by `make test`) is what enforces the layers.
"""

from __future__ import annotations

import ast
import collections
import pathlib
import sys

APPS = ["mssante", "audit", "accounts", "trust", "directory", "mailboxes", "charter", "patients"]


def edges(root: pathlib.Path) -> tuple[collections.Counter, collections.Counter]:
    top: collections.Counter = collections.Counter()
    inner: collections.Counter = collections.Counter()
    for app in APPS:
        for path in (root / app).rglob("*.py"):
            if "/tests/" in str(path) or "/migrations/" in str(path):
                continue
            tree = ast.parse(path.read_text())

            def visit(node: ast.AST, in_function: bool, app: str = app) -> None:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.Import | ast.ImportFrom):
                        if isinstance(child, ast.ImportFrom) and child.level:
                            continue  # relative: the same app
                        names = (
                            [a.name for a in child.names]
                            if isinstance(child, ast.Import)
                            else [child.module or ""]
                        )
                        for name in names:
                            target = name.split(".")[0]
                            if target in APPS and target != app:
                                (inner if in_function else top)[(app, target)] += 1
                    nested = in_function or isinstance(
                        child, ast.FunctionDef | ast.AsyncFunctionDef
                    )
                    visit(child, nested)

            visit(tree, False)
    return top, inner


def main() -> None:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    top, inner = edges(root)
    print(f"{'from':10} {'to':10} {'module':>6} {'in-func':>7}")
    for pair in sorted(set(top) | set(inner)):
        print(f"{pair[0]:10} {pair[1]:10} {top[pair]:6} {inner[pair]:7}")
    print("total in-function imports of another app:", sum(inner.values()))


if __name__ == "__main__":
    main()
