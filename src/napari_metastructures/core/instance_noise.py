"""Old home of the instance-level noise families; they live in :mod:`.noise.instance` now."""
from .noise.instance import drop_instances, label_instances, misannotate_instances, misclassify_instances

__all__ = ["drop_instances", "label_instances", "misannotate_instances", "misclassify_instances"]
