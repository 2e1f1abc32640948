"""The Colab notebook runs end to end on CPU, matches its builder, and its install cell finds its repository."""

import ast
import http.server
import importlib.util
import json
import pathlib
import re
import subprocess
import sys
import threading
import urllib.parse

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "qgac_colab.ipynb"


def test_notebook_is_built_from_build_colab():
    sys.path.insert(0, str(NOTEBOOK.parent))
    import build_colab

    on_disk = nbformat.read(NOTEBOOK, as_version=4)
    assert [c.source for c in on_disk.cells] == [c.source for c in build_colab.build().cells], \
        "run python notebooks/build_colab.py"


@pytest.mark.slow
def test_notebook_runs_without_errors_and_improves_psnr(tmp_path):
    from nbclient import NotebookClient

    from qgac_jax.models.shipped import default_checkpoint

    if default_checkpoint() is None:
        pytest.skip("the notebook restores with the shipped checkpoint, which this version lacks")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    gain = float(re.search(r"psnr\s+JPEG\s+[\d.]+\s+restored\s+[\d.]+\s+gain\s+([+-][\d.]+)", text).group(1))
    assert gain > 0, text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the comparison and the Q-map / attention figure
    assert "restored with my checkpoint" in text


def _install_cell():
    return nbformat.read(NOTEBOOK, as_version=4).cells[1].source


def _install_helpers():
    """The install cell's imports and functions, without its install steps."""
    tree = ast.parse(_install_cell())
    tree.body = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
    namespace = {}
    exec(compile(tree, "install cell", "exec"), namespace)
    return namespace


@pytest.fixture
def jupyter_sessions(monkeypatch):
    """A local HTTP server answering /api/sessions as Colab's Jupyter server does; set `.sessions` to answer."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(server.sessions).encode() if self.path == "/api/sessions" else b""
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.sessions = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("COLAB_JUPYTER_IP", "127.0.0.1")
    monkeypatch.setenv("KMP_TARGET_PORT", str(server.server_address[1]))
    yield server
    server.shutdown()
    server.server_close()


def _session(url):
    return {"name": "qgac_colab.ipynb", "path": "fileId=" + urllib.parse.quote(url, safe=""), "kernel": {"id": "k"}}


def test_install_cell_finds_the_github_repository_and_branch_colab_opened(jupyter_sessions, monkeypatch):
    opened_from = _install_helpers()["opened_from"]
    jupyter_sessions.sessions = [
        _session("https://drive.google.com/file/d/1AbC"),  # another notebook of the same runtime
        _session("https://github.com/someone/qgac_jax/blob/feature/tiles/notebooks/qgac_colab.ipynb"),
    ]
    assert opened_from() == ("https://github.com/someone/qgac_jax.git", "feature/tiles")
    jupyter_sessions.sessions = [_session("https://github.com/a/b/blob/0123abc/notebooks/qgac_colab.ipynb")]
    assert opened_from() == ("https://github.com/a/b.git", "0123abc")
    jupyter_sessions.sessions = [{"name": "Untitled.ipynb", "path": "fileId=1AbCdEf"}]  # from Drive: not known
    assert opened_from() is None
    jupyter_sessions.sessions = {"unexpected": "shape"}
    assert opened_from() is None
    monkeypatch.setenv("KMP_TARGET_PORT", "1")  # nothing listens there
    assert opened_from() is None
    monkeypatch.delenv("COLAB_JUPYTER_IP")  # not on Colab
    assert opened_from() is None


def test_install_cell_clones_a_branch_or_a_commit_and_an_interrupted_clone_is_redone(tmp_path):
    clone = _install_helpers()["clone"]
    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "marker.txt").write_text("first")
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "first"], check=True)
    first = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(git + ["checkout", "-q", "-b", "feature/tiles"], check=True)
    (repo / "marker.txt").write_text("second")
    subprocess.run(git + ["commit", "-q", "-am", "second"], check=True)
    subprocess.run(git + ["checkout", "-q", "main"], check=True)  # the default branch, as on GitHub
    url = repo.as_uri()  # file://: a shallow clone goes through git's transport, as from GitHub

    clone(url, "feature/tiles", tmp_path / "branch")
    assert (tmp_path / "branch" / "marker.txt").read_text() == "second"
    clone(url, first[:12], tmp_path / "commit")
    assert (tmp_path / "commit" / "marker.txt").read_text() == "first"
    clone(url, None, tmp_path / "default")
    assert (tmp_path / "default" / "marker.txt").read_text() == "first"  # main
    with pytest.raises(subprocess.CalledProcessError):  # cloned, then the checkout fails: stopped half-way
        clone(url, "deadbeef", tmp_path / "again")
    assert not (tmp_path / "again").exists()  # so running the cell again clones again...
    clone(url, "feature/tiles", tmp_path / "again")  # ...over what the stopped one left
    assert (tmp_path / "again" / "marker.txt").read_text() == "second"


def test_install_cell_says_what_to_do_when_it_cannot_find_the_repository(tmp_path, monkeypatch):
    for name in ("COLAB_JUPYTER_IP", "QGAC_REPO"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # as where qgac_jax is not installed
    with pytest.raises(SystemExit, match="not opened from GitHub.*QGAC_REPO"):
        exec(_install_cell(), {})
    assert not (tmp_path / "qgac_jax_src").exists()
