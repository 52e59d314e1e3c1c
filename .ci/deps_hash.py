"""Print a short hash of the dependency declarations in pyproject.toml (the venv cache key)."""

import hashlib
import json
import sys

with open("pyproject.toml", "rb") as fh:
    raw = fh.read()
try:
    import tomllib
except ImportError:  # Python 3.10: no TOML parser in the standard library; key on the whole file
    key: object = {"python": sys.version_info[:2], "pyproject": raw.decode()}
else:
    data = tomllib.loads(raw.decode())
    key = {
        "python": sys.version_info[:2],
        "dependencies": data["project"]["dependencies"],
        "optional": data["project"].get("optional-dependencies", {}),
        "build": data["build-system"]["requires"],
    }
print(hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12])
