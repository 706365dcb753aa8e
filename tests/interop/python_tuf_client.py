#!/usr/bin/env python3
"""Reads an archy repository with python-tuf (the reference TUF client) and reports what it saw.

    python_tuf_client.py --metadata-url URL --target-base-url URL --root initial-root.json \
        [--target NAME]... --out DIR [--metadata-dir DIR]

Refreshes the top-level metadata, then looks up (through delegations) and downloads each target
in order. Prints one JSON object on stdout:

    {"root_version": N, "timestamp_version": N, "snapshot_version": N, "targets_version": N,
     "downloaded": {"<target name>": "<sha256 hex of the downloaded file>", ...}}

Exits 1 with the error on stderr if python-tuf refuses anything (or the arguments are wrong).
--metadata-dir keeps python-tuf's trusted metadata between runs (default: a fresh temp dir, so
every run starts from --root); --root is then only used while that dir has no root.json yet.
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

from tuf.ngclient import Updater

TOP_LEVEL = ("root", "timestamp", "snapshot", "targets")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--metadata-url", required=True)
    parser.add_argument("--target-base-url", required=True)
    parser.add_argument("--root", required=True, help="trusted initial root.json")
    parser.add_argument("--target", action="append", default=[], help="target path (repeatable)")
    parser.add_argument("--out", required=True, help="download directory")
    parser.add_argument("--metadata-dir", help="python-tuf metadata dir (default: temporary)")
    try:
        return parser.parse_args()
    except SystemExit as e:  # argparse exits 2 on bad usage: this script promises 1
        sys.exit(0 if e.code == 0 else 1)


def run(args: argparse.Namespace, metadata_dir: str) -> dict:
    os.makedirs(args.out, exist_ok=True)
    bootstrap = None
    if not os.path.exists(os.path.join(metadata_dir, "root.json")):
        with open(args.root, "rb") as f:
            bootstrap = f.read()
    updater = Updater(
        metadata_dir, args.metadata_url, args.out, args.target_base_url, bootstrap=bootstrap
    )
    updater.refresh()
    downloaded = {}
    for name in args.target:
        info = updater.get_targetinfo(name)
        if info is None:
            raise LookupError(f"target {name!r} not found in the repository")
        path = updater.download_target(info)
        with open(path, "rb") as f:
            downloaded[name] = hashlib.sha256(f.read()).hexdigest()
    result = {}
    for role in TOP_LEVEL:
        with open(os.path.join(metadata_dir, f"{role}.json"), "rb") as f:
            result[f"{role}_version"] = json.load(f)["signed"]["version"]
    result["downloaded"] = downloaded
    return result


def main() -> int:
    args = parse_args()
    if args.metadata_dir:
        os.makedirs(args.metadata_dir, exist_ok=True)
        metadata_dir, temporary = args.metadata_dir, False
    else:
        metadata_dir, temporary = tempfile.mkdtemp(prefix="python-tuf-metadata-"), True
    try:
        result = run(args, metadata_dir)
    except Exception as e:  # noqa: BLE001 - every refusal is reported to the caller
        print(f"python-tuf: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if temporary:
            shutil.rmtree(metadata_dir, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
