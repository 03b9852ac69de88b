"""Renders the kustomizations of `deploy/k8s/` the way `kubectl kustomize` does, for the subset they use.

The machines that run the tests have no kubectl; the manifests use only
`resources`, `namespace`, `labels` (metadata only), `images` and `patches`
(strategic-merge files naming their target by kind and name), and a field
outside that subset fails the render instead of being ignored. Strategic merge
here: maps merge key by key, lists of named items merge by `name`, other lists
are replaced; what `deploy/k8s/` patches needs no more.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}

Resource = dict[str, Any]


def render(directory: Path) -> list[Resource]:
    """Every resource the kustomization in `directory` produces."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED
    if unsupported:
        raise ValueError(f"{directory}: kustomization fields this renderer does not support: {sorted(unsupported)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources += render(path)
        else:
            resources += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise ValueError(f"{directory}: only `patches: - path:` is supported, not {patch_entry}")
        patch = yaml.safe_load((directory / patch_entry["path"]).read_text())
        targets = [r for r in resources if _identity(r) == _identity(patch)]
        if len(targets) != 1:
            raise ValueError(f"{directory}: patch {patch_entry['path']} matches {len(targets)} resources")
        merged = strategic_merge(targets[0], patch)
        targets[0].clear()
        targets[0].update(merged)
    for label in kustomization.get("labels", []):
        if set(label) != {"pairs"}:
            raise ValueError(f"{directory}: only `labels: - pairs:` (metadata only) is supported")
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(label["pairs"])
    for image in kustomization.get("images", []):
        for container in _containers(resources):
            if container.get("image", "").split(":")[0] == image["name"]:
                name = image.get("newName", image["name"])
                container["image"] = f"{name}:{image['newTag']}" if "newTag" in image else name
    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = namespace
    return resources


def strategic_merge(base: Any, patch: Any) -> Any:
    """`patch` merged into `base` (neither is changed).

    >>> strategic_merge({"a": 1, "c": [{"name": "x", "v": 1}, {"name": "y"}]}, {"c": [{"name": "x", "v": 2}]})
    {'a': 1, 'c': [{'name': 'x', 'v': 2}, {'name': 'y'}]}
    """
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if _named_list(base) and _named_list(patch):
        merged_list = copy.deepcopy(base)
        for item in patch:
            found = next((i for i, old in enumerate(merged_list) if old["name"] == item["name"]), None)
            if found is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[found] = strategic_merge(merged_list[found], item)
        return merged_list
    return copy.deepcopy(patch)


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(i, dict) and "name" in i for i in value)


def _identity(resource: Resource) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def _containers(resources: list[Resource]) -> list[dict[str, Any]]:
    found = []
    for resource in resources:
        spec = resource.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        if resource["kind"] == "CronJob":
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
        found += pod.get("containers", []) + pod.get("initContainers", [])
    return found
