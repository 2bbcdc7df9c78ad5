"""No stage imports another stage's modules: only `contracts`, the shared infrastructure and,
where truly needed, another stage's public `__init__`."""

from __future__ import annotations

import ast
from pathlib import Path

import persona_testbed

PACKAGE = Path(persona_testbed.__file__).parent
STAGES = (
    "census",
    "prompts",
    "preferences",
    "bench",
    "agreement",
    "annotate",
    "align",
    "report",
    "pipeline",
)
# The pipeline and the report drive or show every stage, so they may use any stage's public
# API; any other stage using another's public API is listed here, so each one is deliberate.
ORCHESTRATORS = ("pipeline", "report")
ALLOWED_PUBLIC = {
    ("preferences", "prompts"),  # the train/held-out split size, for planning
    ("agreement", "preferences"),  # the DPF refinement step (agreement/dpf.py is the one door)
    ("annotate", "agreement"),  # the human majority vote, so both stages count it alike
    ("align", "prompts"),  # the bundled sentence embedder (MiniLMEmbedder) and its protocol
}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of everything the module imports, `from a import b` as `a.b` too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _is_module(stage: str, name: str) -> bool:
    return (PACKAGE / stage / f"{name}.py").is_file() or (PACKAGE / stage / name).is_dir()


def _cross_stage_imports() -> tuple[list[str], set[tuple[str, str]]]:
    """(imports of another stage's modules, (stage, other) pairs using a public API)."""
    internal: list[str] = []
    public: set[tuple[str, str]] = set()
    for stage in STAGES:
        for path in sorted((PACKAGE / stage).rglob("*.py")):
            for line, name in _imports(path):
                parts = name.split(".")
                if parts[0] != "persona_testbed" or len(parts) < 2:
                    continue
                other = parts[1]
                if other not in STAGES or other == stage:
                    continue
                if len(parts) >= 3 and _is_module(other, parts[2]):
                    where = path.relative_to(PACKAGE.parent)
                    internal.append(f"{where}:{line}: imports {name}")
                else:
                    public.add((stage, other))
    return internal, public


def test_no_stage_imports_another_stages_modules() -> None:
    internal, _ = _cross_stage_imports()
    assert internal == [], "\n".join(internal)


def test_only_orchestrators_use_other_stages_public_apis() -> None:
    _, public = _cross_stage_imports()
    unexpected = {
        (stage, other)
        for stage, other in public
        if stage not in ORCHESTRATORS and (stage, other) not in ALLOWED_PUBLIC
    }
    assert unexpected == set()


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    """The parser finds both spellings of a stage-internal import."""
    module = tmp_path / "m.py"
    module.write_text(
        "from persona_testbed.census.pipeline import PersonaConfig\n"
        "from persona_testbed.census import pipeline\n"
        "import persona_testbed.bench.pairs\n"
    )
    names = [name for _, name in _imports(module)]
    assert "persona_testbed.census.pipeline" in names
    assert "persona_testbed.census.pipeline.PersonaConfig" in names
    assert "persona_testbed.bench.pairs" in names
    assert _is_module("census", "dictionary")
    assert not _is_module("census", "PersonaConfig")
