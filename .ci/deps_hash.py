"""Print a short hash of the dependency declarations in pyproject.toml (the venv cache key)."""

import hashlib
import json
import sys
import tomllib

with open("pyproject.toml", "rb") as fh:
    data = tomllib.load(fh)
key = {
    "python": sys.version_info[:2],
    "dependencies": data["project"]["dependencies"],
    "optional": data["project"].get("optional-dependencies", {}),
    "build": data["build-system"]["requires"],
}
print(hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12])
