#!/usr/bin/env python3
"""Reads an archy repository with python-tuf (the reference TUF client) and reports what it saw.

Prints one JSON object: the trusted metadata versions after the update and the SHA-256 of each
downloaded target. Exits 1 with the error on stderr if python-tuf refuses anything.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

from tuf.ngclient import Updater


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--metadata-url", required=True)
    parser.add_argument("--target-base-url", required=True)
    parser.add_argument("--root", required=True, help="trusted initial root.json")
    parser.add_argument("--target", action="append", default=[])
    parser.add_argument("--out", required=True, help="download folder")
    args = parser.parse_args()

    metadata_dir = tempfile.mkdtemp(prefix="python-tuf-metadata-")
    os.makedirs(args.out, exist_ok=True)
    with open(args.root, "rb") as f:
        bootstrap = f.read()
    try:
        updater = Updater(metadata_dir, args.metadata_url, args.out, args.target_base_url, bootstrap=bootstrap)
        updater.refresh()
        downloaded = {}
        for name in args.target:
            info = updater.get_targetinfo(name)
            if info is None:
                raise RuntimeError(f"target {name} not found")
            path = updater.download_target(info)
            with open(path, "rb") as f:
                downloaded[name] = hashlib.sha256(f.read()).hexdigest()
        trusted = {}
        for role in ("root", "timestamp", "snapshot", "targets"):
            with open(os.path.join(metadata_dir, f"{role}.json"), "rb") as f:
                trusted[f"{role}_version"] = json.load(f)["signed"]["version"]
    except Exception as e:  # noqa: BLE001 - report any refusal to the caller
        print(f"python-tuf: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(metadata_dir, ignore_errors=True)
    print(json.dumps({**trusted, "downloaded": downloaded}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
