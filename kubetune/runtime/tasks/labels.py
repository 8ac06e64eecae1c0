"""Label vocabularies for classification tasks: class names from the data, ids for the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetune.contract.spec import label_head_kwargs
from kubetune.runtime.errors import TrainerError
from kubetune.runtime.tasks.base import Task, ensure_list


@dataclass
class LabelSet:
    """The names of a classification head's labels; `ids` maps data values to label ids."""

    names: list[str]
    ids: dict[Any, int]

    def model_kwargs(self) -> dict[str, Any]:
        """`from_pretrained` arguments for a head of these labels (num_labels, id2label, label2id)."""
        return label_head_kwargs(self.names)


def label_set(
    values: list[Any], feature_names: list[str] | None, num_labels: int | None, column: str
) -> LabelSet:
    """Labels from a ClassLabel's names, else from the values: strings sorted, ints 0..max.

    `num_labels` (from HuggingFaceModelParams) must cover every value seen.
    """
    if feature_names:
        names = list(feature_names)
        ids: dict[Any, int] = {i: i for i in range(len(names))}
        ids.update({name: i for i, name in enumerate(names)})
    elif all(isinstance(v, str) for v in values):
        names = sorted(set(values))
        ids = {name: i for i, name in enumerate(names)}
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if values and min(values) < 0:
            raise TrainerError(
                f"column {column!r}: label {min(values)} is negative; labels must be ids 0..n-1 or strings"
            )
        count = max(values) + 1 if values else 0
        if num_labels is not None and num_labels < count:
            raise TrainerError(
                f"num_labels={num_labels}: the {column!r} column has label {count - 1}; "
                f"num_labels must be at least {count}"
            )
        names = [str(i) for i in range(num_labels or count)]
        ids = {i: i for i in range(len(names))}
    else:
        kinds = sorted({type(v).__name__ for v in values})
        raise TrainerError(
            f"column {column!r}: labels must all be integers or all strings; found {', '.join(kinds)}"
        )
    if num_labels is not None and num_labels != len(names):
        raise TrainerError(
            f"num_labels={num_labels}: the {column!r} column has {len(names)} labels {names[:10]}; "
            "leave num_labels None to infer it, or give the matching number"
        )
    return LabelSet(names, ids)


def feature_names(dataset: Any, column: str) -> list[str] | None:
    """The names of a ClassLabel column (or of a sequence of ClassLabel), else None."""
    feature = dataset.features.get(column)
    for _ in range(3):
        names = getattr(feature, "names", None)
        if names:
            return list(names)
        feature = getattr(feature, "feature", None)
        if feature is None:
            return None
    return None


def column_labels(
    train: Any, eval: Any | None, column: str, num_labels: int | None, per_token: bool = False
) -> LabelSet:
    """The label set of `column` over the train and eval splits; `per_token`: rows hold lists."""

    def values(split: Any) -> list[Any]:
        rows = ensure_list(split[column])
        return [tag for row in rows for tag in row] if per_token else rows

    train_values = values(train)
    eval_values = values(eval) if eval is not None else []
    labels = label_set(train_values + eval_values, feature_names(train, column), num_labels, column)
    require_two_classes(labels, train_values, column)
    return labels


def require_two_classes(labels: LabelSet, train_values: list[Any], column: str) -> None:
    """Refuses a train split whose labels are all one class: the model would learn nothing."""
    seen = sorted({labels.ids[v] for v in train_values})
    if len(seen) >= 2:
        return
    found = (
        f"only the class {labels.names[seen[0]]!r} in all {len(train_values)} labels"
        if seen
        else "no labels"
    )
    raise TrainerError(
        f"column {column!r}: the train split has {found}; a classifier learns nothing from "
        f"one class. Give it examples of at least 2 classes (the label set is {labels.names[:10]})"
    )


class LabelledTask(Task):
    """A task with a classification head: its label set comes from one column of the data.

    `label_role` names the column's role; `per_token_labels` says each row holds a list.
    """

    label_role: str = "label"
    per_token_labels: bool = False
    labels: LabelSet

    def model_kwargs(self, train: Any, eval: Any | None) -> dict[str, Any]:
        column = self.column(self.label_role)
        assert column is not None
        self.labels = column_labels(
            train,
            eval,
            column,
            self.settings.num_labels,
            per_token=self.per_token_labels,
        )
        return self.labels.model_kwargs()
