#!/usr/bin/env python3
"""Checks that each crate's `rust-version` (its MSRV) is at least the highest `rust-version`
declared by any package in its dependency tree, from `cargo metadata --format-version 1`.

    scripts/rust-version.py [MANIFEST ...]

Without arguments it checks the workspace (Cargo.toml) and the Worker crate, which has its own
lock file (workers/edge-fallback/Cargo.toml). For each crate it prints the rust-version it
declares, the highest one in its tree and the package that requires it; it exits 1 if any crate
declares less than its tree needs (or declares none).

The tree of a crate is what building and testing it compiles, on any platform:
- its normal and build dependencies, transitively, with every feature of the workspace enabled
  (`--all-features`: any feature a user may turn on counts);
- its own dev-dependencies, with their normal and build dependencies, because `cargo test` on
  the declared toolchain needs them too (dev-dependencies of dependencies are never built);
- dependencies of every target platform, not only the host's: the MSRV is a claim for all.
"""
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_MANIFESTS = ["Cargo.toml", "workers/edge-fallback/Cargo.toml"]


def version_key(version):
    """"1.85" -> (1, 85, 0): rust-version may omit the patch (and the minor) number."""
    parts = [int(part) for part in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def metadata(manifest):
    output = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked",
         "--manifest-path", str(manifest)],
        check=True, stdout=subprocess.PIPE, cwd=REPO,
    ).stdout
    return json.loads(output)


def tree(root, nodes):
    """The package ids `root` compiles: see the module docs."""
    def kinds(dep):
        return {kind["kind"] for kind in dep["dep_kinds"]}

    seen = set()
    pending = [root]
    pending += [dep["pkg"] for dep in nodes[root]["deps"] if "dev" in kinds(dep)]
    while pending:
        package = pending.pop()
        if package in seen:
            continue
        seen.add(package)
        pending += [dep["pkg"] for dep in nodes[package]["deps"] if kinds(dep) & {None, "build"}]
    return seen


def check(manifest):
    data = metadata(manifest)
    packages = {package["id"]: package for package in data["packages"]}
    nodes = {node["id"]: node for node in data["resolve"]["nodes"]}
    ok = True
    for member in data["workspace_members"]:
        crate = packages[member]
        declared = crate.get("rust_version")
        needs = [packages[dep] for dep in tree(member, nodes) - {member} if packages[dep].get("rust_version")]
        highest = max((version_key(package["rust_version"]) for package in needs), default=(0, 0, 0))
        by = sorted(f"{package['name']} {package['version']}" for package in needs
                    if version_key(package["rust_version"]) == highest)
        required = next((package["rust_version"] for package in needs
                         if version_key(package["rust_version"]) == highest), "none")
        short = declared is None or version_key(declared) < highest
        ok = ok and not short
        print(f"{crate['name']:<20} declares {declared or 'none':<6} its tree needs {required:<8} "
              f"({', '.join(by) or 'nothing'}){'  <- TOO LOW' if short else ''}")
    return ok


def main(arguments):
    manifests = [REPO / manifest for manifest in (arguments or DEFAULT_MANIFESTS)]
    results = [check(manifest) for manifest in manifests]
    if not all(results):
        print("error: a crate's rust-version is below what its dependencies declare; raise it "
              "(Cargo.toml [workspace.package], workers/edge-fallback/Cargo.toml)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
