"""Compare two folders of figure manifests: which numbers and checks changed (timings ignored).

``python -m figures.compare OLD NEW`` reads every ``NAME.json`` present in both folders and
prints, per figure, the numbers whose values differ, the numbers only one side has, and the
checks (matched by claim) whose measured value, bound or verdict differ. Values are compared
exactly: the same seed must give the same numbers. Exit status 1 if a number present on both
sides differs (outside timing fields) or a manifest of OLD is missing from NEW.

>>> differences({"a": 1.0, "t": {"wall_time": 3.0}}, {"a": 1.0, "b": 2, "t": {"wall_time": 4.0}})
{'changed': [], 'only_old': [], 'only_new': ['b']}
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

TIMING_KEYS = frozenset({"wall_time", "train_time", "certify_time", "seconds"})


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _walk(old, new, path, out) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            if key in TIMING_KEYS:
                continue
            where = f"{path}/{key}" if path else str(key)
            if key not in new:
                out["only_old"].append(where)
            elif key not in old:
                out["only_new"].append(where)
            else:
                _walk(old[key], new[key], where, out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            _walk(a, b, f"{path}/{index}", out)
    elif not _equal(old, new):
        out["changed"].append(f"{path}: {old!r} -> {new!r}")


def differences(old, new) -> dict:
    """Paths of values that changed, and of keys only in ``old`` or only in ``new``."""
    out = dict(changed=[], only_old=[], only_new=[])
    _walk(old, new, "", out)
    return out


def check_differences(old: list, new: list) -> list:
    """Checks matched by claim: those added, removed, or with another measured value, bound or verdict."""
    before = {c["claim"]: c for c in old}
    after = {c["claim"]: c for c in new}
    lines = [f"removed: {claim}" for claim in before if claim not in after]
    lines += [f"added: {claim} (holds: {after[claim]['holds']})" for claim in after if claim not in before]
    for claim in before.keys() & after.keys():
        a, b = before[claim], after[claim]
        changed = [key for key in ("measured", "bound", "holds") if not _equal(a[key], b[key])]
        if changed:
            lines.append(f"changed: {claim}: " + ", ".join(f"{key} {a[key]!r} -> {b[key]!r}" for key in changed))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m figures.compare", description=__doc__.splitlines()[0])
    parser.add_argument("old", help="folder of manifests (reference)")
    parser.add_argument("new", help="folder of manifests to compare with it")
    parser.add_argument("--limit", type=int, default=20, help="lines shown per kind of difference")
    args = parser.parse_args(argv)
    status = 0
    for name in sorted(f for f in os.listdir(args.old) if f.endswith(".json")):
        path = os.path.join(args.new, name)
        if not os.path.exists(path):
            print(f"{name}: missing from {args.new}")
            status = 1
            continue
        with open(os.path.join(args.old, name), encoding="utf-8") as a, open(path, encoding="utf-8") as b:
            old, new = json.load(a), json.load(b)
        found = differences(old["numbers"], new["numbers"])
        checks = check_differences(old["checks"], new["checks"])
        print(f"{name}: numbers changed {len(found['changed'])}, only old {len(found['only_old'])}, "
              f"only new {len(found['only_new'])}; checks differing {len(checks)}")
        for kind in ("changed", "only_old", "only_new"):
            for line in found[kind][:args.limit]:
                print(f"    {kind}: {line[:240]}")
        for line in checks[:args.limit]:
            print(f"    check {line[:240]}")
        status |= bool(found["changed"] or found["only_old"])
    return status


if __name__ == "__main__":
    sys.exit(main())
