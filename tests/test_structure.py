"""The package's shape: no import cycles, command-line modules are leaves, no stale references."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qgac_jax"
# Command-line entry points: nothing in the package may import them.
CLI_MODULES = {"qgac_jax.train", "qgac_jax.train_estimator", "qgac_jax.restore", "qgac_jax.evaluate", "qgac_jax.export",
               "qgac_jax.app", "qgac_jax.restore_dataset",
               "qgac_jax.models.__main__", "qgac_jax.tools.convert_vgg", "qgac_jax.tools.make_figure"}


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT / pathlib.Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def import_graph():
    """{module: {package modules it imports anywhere in its file, function bodies included}}."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("qgac_jax")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qgac_jax"):
                for alias in node.names:  # `from qgac_jax import data` names a module, `import X` an attribute
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if _is_module(sub) else node.module)
        graph[name] = {d for d in deps if _is_module(d) and d != name}
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 20 and "qgac_jax.data.degrade" in graph["qgac_jax.data.pillow_pipeline"]
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_command_line_modules_are_leaves():
    importers = {m: sorted(src for src, deps in import_graph().items() if m in deps) for m in CLI_MODULES}
    assert all(_is_module(m) for m in CLI_MODULES)
    assert {m: who for m, who in importers.items() if who} == {}


def test_the_repository_cites_nothing_outside_itself():
    for path in [
        ROOT / "README.md",
        *PACKAGE.rglob("*.py"),
        *(ROOT / "configs").glob("*.py"),
        *(ROOT / "docs").glob("*.md"),
    ]:
        text = path.read_text()
        assert not re.search(r"SPEC(\.md| section)|\.\./shared/SPEC", text), path
    for cited in set(re.findall(r"docs/[\w.]+\.md", (ROOT / "README.md").read_text())):
        assert (ROOT / cited).is_file(), cited


def test_modules_and_functions_stay_small():
    """At most 350 lines a module and 80 lines a function (benchmarks/ excepted): one concept each."""
    too_long = []
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "configs").glob("*.py"), *(ROOT / "tests").glob("*.py"),
                 *(ROOT / "notebooks").glob("*.py")]:
        text = path.read_text()
        if len(text.splitlines()) > 350:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                too_long.append(f"{path.relative_to(ROOT)}: {node.name}() {node.end_lineno - node.lineno + 1} lines")
    assert too_long == []


def _sources():
    return {path: path.read_text() for path in [*PACKAGE.rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"),
                                                *(ROOT / "configs").glob("*.py")]}


def test_the_top_level_holds_the_command_lines_and_little_else():
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == ["__init__", "app", "evaluate", "export", "restore", "restore_dataset", "train", "train_estimator"]
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(FLOORS) - {"cli"}


# Each room's floor: a room imports only rooms below it (README's map draws the same house).
FLOORS = {"codecs": 0, "models": 1, "files": 1, "data": 2, "graphs": 2, "evaluation": 3, "restoring": 3,
          "commands": 4, "training": 5, "apps": 5, "tools": 6, "cli": 7}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else "cli"


def _arrows_up(graph):
    return sorted(f"{src} ({_room(src)}) -> {dep} ({_room(dep)})" for src, deps in graph.items() for dep in deps
                  if _room(src) != _room(dep) and FLOORS[_room(src)] <= FLOORS[_room(dep)])


def test_no_room_imports_a_room_above_it_or_beside_it():
    graph = import_graph()
    assert {_room(m) for m in graph} == set(FLOORS)
    assert _arrows_up(graph) == []
    # restoring photos is not what training or its data stand on
    assert [f"{s} -> {d}" for s, deps in graph.items() for d in deps
            if _room(s) in ("data", "training") and _room(d) in ("restoring", "commands", "apps", "graphs")] == \
        [f"{s} -> {d}" for s, deps in graph.items() for d in deps
         if s == "qgac_jax.training.entry" and d == "qgac_jax.commands.logs"]


def test_the_floor_check_sees_an_arrow_up():
    assert _arrows_up({"qgac_jax.files.images": {"qgac_jax.restoring.guide"}}) == [
        "qgac_jax.files.images (files) -> qgac_jax.restoring.guide (restoring)"]
    assert _arrows_up({"qgac_jax.data.sources": {"qgac_jax.graphs.onnx_graph"}})  # beside: refused too
    assert _arrows_up({"qgac_jax.restore": {"qgac_jax.restoring.guide"}}) == []


def test_module_names_are_not_repeated_across_rooms():
    names = {}
    for path in PACKAGE.rglob("*.py"):
        if path.parent != PACKAGE and path.stem not in ("__init__", "__main__"):
            names.setdefault(path.stem, []).append(str(path.relative_to(PACKAGE)))
    assert {name: where for name, where in names.items() if len(where) > 1} == {}


def test_one_definition_each_of_the_shared_ideas():
    """The mode parser and its help, the --max-pixels check, the trainers' entry, the FLOP count and the
    shipped models' folder are each written once; everything else calls them."""
    sources = _sources()

    def where(pattern):
        return sorted(str(p.relative_to(ROOT)) for p, text in sources.items() if re.search(pattern, text))

    assert where(r"def parse_mode\b|'auto', 'file'\)|\"auto\", \"file\"\)") == ["qgac_jax/restoring/guide.py"]
    assert where(r"what the network is told about the file's quantization") == ["qgac_jax/restoring/guide.py"]
    assert where(r"add_argument\(\s*\"--max-pixels\"") == ["qgac_jax/commands/arguments.py"]
    # (export's --quality bakes one quality's tables into the graph: no file, no mode; the benchmarks' save photos)
    assert where(r"add_argument\(\s*\"--quality\", type=") == [
        "benchmarks/restore_consistent.py", "benchmarks/restore_dataset.py", "benchmarks/restore_jobs.py",
        "benchmarks/restore_precision.py",
        "benchmarks/restore_profile.py", "qgac_jax/commands/arguments.py", "qgac_jax/export.py"]
    assert where(r"command_line\(") == ["qgac_jax/training/config.py", "qgac_jax/training/entry.py"]
    # restore's settings built from the arguments, --checkpoint, and the backend and precision decided: once each
    assert where(r"def settings\(|Settings\([^)]*=\s*args\.") == ["qgac_jax/commands/jobs.py"]
    assert where(r"add_argument\(\s*[\"']--checkpoint[\"']") == ["qgac_jax/commands/arguments.py"]
    assert where(r"fast_int8\(\)|Engine\(backend|f?\"auto: (?:an|int8|this|the)\b|args\.backend\s*=[^=]") == [
        "qgac_jax/commands/engines.py"]
    engines_source = (PACKAGE / "commands" / "engines.py").read_text()
    assert len(re.findall(r"fast_int8\(\)", engines_source)) == 1 and not re.search(r"args\.backend = ", engines_source)
    assert where(r"cost_analysis\(|def count_flops|def jaxpr_flops") == ["qgac_jax/models/flops.py"]
    assert where(r"[\"']pretrained[\"']") == ["qgac_jax/models/shipped.py"]


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_to_a_docs_section_finds_its_heading():
    docs = {p.name: p.read_text() for p in (ROOT / "docs").glob("*.md")}
    anchors = {name: {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)} for name, text in docs.items()}
    broken = []
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target, anchor in re.findall(r"\]\(([\w/.]*\.md)?#([\w-]+)\)", path.read_text()):
            name = pathlib.Path(target).name if target else path.name
            if anchor not in anchors.get(name, set()):
                broken.append(f"{path.name}: {target}#{anchor}")
    assert _slug("What made the CPU train step 2.5x faster") == "what-made-the-cpu-train-step-25x-faster"
    assert broken == []


def test_the_readmes_gains_are_the_shipped_models_numbers_in_their_model_card():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| the photo | gain, dB |"):].split("\n\n")[0]
    gains = re.findall(r"[+-]\d+\.\d\d\b", table)
    card = (ROOT / "docs" / "model_cards.md").read_text()
    shipped = card[card.index("## The shipped models' numbers"):]
    assert len(gains) >= 10 and [g for g in gains if g not in shipped] == []


_OUTSIDE_IMPORT = re.compile(r"^\s*from (qgac_jax(?:\.\w+)*) import ([\w ,]+?)\s*(?:#.*)?$", re.M)


def _outside_imports():
    """(file, module, name) for each `from qgac_jax... import name` written outside the package's Python files
    (CI and launch scripts, the notebook, docs): nothing imports those before a user or CI runs them."""
    files = [*(ROOT / ".ci").iterdir(), *(ROOT / "launch").glob("*.sh"), *(ROOT / "notebooks").iterdir(),
             ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for path in files:
        if path.is_file() and path.suffix in {"", ".sh", ".py", ".ipynb", ".md"}:
            text = path.read_text().replace('\\n",', "\n")  # a notebook's source lines
            for module, names in _OUTSIDE_IMPORT.findall(text):
                for name in names.split(","):
                    name = name.strip().split(" as ")[0].strip()
                    if name:
                        yield path.relative_to(ROOT), module, name


def test_imports_written_outside_the_package_name_what_exists():
    """A move of a module must reach the scripts that only CI or a user runs (the Colab check once imported
    `shipped` from the top level after it moved to restoring/)."""
    found = list(_outside_imports())
    assert any(str(p) == ".ci/colab_install.sh" for p, _, _ in found)
    missing = []
    for path, module, name in found:
        if not (_is_module(f"{module}.{name}") or re.search(
                rf"^(?:def |class )?{name}\b|^\s*(?:from \S+ )?import .*\b{name}\b|^{name}\s*[:=]",
                _module_source(module), re.M)):
            missing.append(f"{path}: from {module} import {name}")
    assert not missing, missing


def _module_source(module: str) -> str:
    path = ROOT / pathlib.Path(*module.split("."))
    if (path / "__init__.py").is_file():
        return (path / "__init__.py").read_text()
    return path.with_suffix(".py").read_text()


# Test files that hold the whole project to something rather than mirror one module.
SUITE_LEVEL = {"test_readme.py": "README.md's commands", "test_documented_commands.py": "docs/' commands",
               "test_launch.py": "launch/", "test_notebook.py": "notebooks/", "test_structure.py": "the package",
               "test_fuzz.py": "every reader at once"}


def test_test_files_mirror_the_modules_they_test():
    names = {p.stem for p in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.iterdir() if p.is_dir()}
    orphans = sorted(p.name for p in (ROOT / "tests").glob("test_*.py")
                     if p.stem[len("test_"):] not in names and p.name not in SUITE_LEVEL)
    assert orphans == []
