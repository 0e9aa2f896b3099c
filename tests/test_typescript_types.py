"""Front-end types generated from the live spec are exact: openapi-typescript + `tsc --strict` (tests/js/types)."""

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"
TYPES_DIR = JS_DIR / "types"
BIN = JS_DIR / "node_modules" / ".bin"
NODE = shutil.which("node")
# Fields with a default are optional in requests; the spec marks what responses always hold as `required`.
GENERATOR_OPTIONS = ["--default-non-nullable", "false"]
TSC = ["--strict", "--noEmit", "--target", "es2022", "--lib", "es2022,dom", "--module", "esnext"]
TSC += ["--moduleResolution", "bundler", "--skipLibCheck"]


def _skip_reason():
    if NODE is None:
        return "node is not installed: the TypeScript types test needs node (and `npm ci --prefix tests/js`)"
    if not (BIN / "openapi-typescript").exists() or not (BIN / "tsc").exists():
        return "tests/js/node_modules lacks openapi-typescript or typescript: run `npm ci --prefix tests/js`"
    return None


@pytest.fixture
def generated(live_server, tmp_path):
    """api.d.ts generated from the live /api/openapi.json, beside copies of the usage files."""
    reason = _skip_reason()
    if reason:
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    with urllib.request.urlopen(f"{live_server.url}/api/openapi.json", timeout=10) as response:
        (tmp_path / "openapi.json").write_text(json.dumps(json.load(response)))
    result = subprocess.run(
        [
            str(BIN / "openapi-typescript"),
            str(tmp_path / "openapi.json"),
            *GENERATOR_OPTIONS,
            "--output",
            str(tmp_path / "api.d.ts"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for source in TYPES_DIR.glob("*.ts"):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path


def tsc(directory, filename):
    return subprocess.run(
        [str(BIN / "tsc"), *TSC, str(directory / filename)], capture_output=True, text=True, timeout=180
    )


def test_generated_types_are_exact(generated):
    api = (generated / "api.d.ts").read_text()
    assert "id: string;" in api and "id?: string;" not in api.split("TaskOut")[1].split("};")[0]
    assert 'contact_person: components["schemas"]["UserBrief"] | null;' in api
    assert "Record<string, never> | null" not in api
    result = tsc(generated, "usage.ts")
    assert result.returncode == 0, f"tsc --strict rejected tests/js/types/usage.ts:\n{result.stdout}{result.stderr}"


def test_a_nullable_user_cannot_be_read_as_non_null(generated):
    result = tsc(generated, "misuse.ts")
    assert result.returncode != 0, "tests/js/types/misuse.ts compiled: a nullable user is typed as non-null"
    assert "possibly 'null'" in result.stdout, result.stdout
