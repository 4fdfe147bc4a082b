"""The data contract, declared once in params.yaml: columns, types, ranges, roles.

Everything else derives from it: validation rules, feature groups for preprocessing,
and later the serving API's request model and the drift checks.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

YAML_BOOLEAN = (
    "YAML reads an unquoted true/false (and, in YAML 1.1 tools, yes/no and on/off) as a "
    'boolean: quote the value ("Yes", "No", "true") to keep it a string'
)


def _no_yaml_booleans(value: Any) -> Any:
    """Refuse booleans where strings belong, naming the YAML rule that made them."""
    items = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(item, bool) for item in items):
        raise ValueError(f"got {value!r}: {YAML_BOOLEAN}")
    return value


class ColumnType(StrEnum):
    """Logical column types; each maps to one pandas dtype."""

    STRING = "string"
    DATETIME = "datetime"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CATEGORY = "category"


class Role(StrEnum):
    """What a column is for. Only `feature` columns reach the model."""

    ID = "id"
    TIME = "time"
    TARGET = "target"
    ENTITY = "entity"
    FEATURE = "feature"
    IGNORE = "ignore"


PANDAS_DTYPES: dict[ColumnType, str] = {
    ColumnType.STRING: "object",
    ColumnType.DATETIME: "datetime64[ns]",
    ColumnType.INT: "int64",
    ColumnType.FLOAT: "float64",
    ColumnType.BOOL: "bool",
    ColumnType.CATEGORY: "object",
}


class ColumnSpec(BaseModel):
    """One column of the contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: ColumnType
    role: Role = Role.FEATURE
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    allowed: tuple[int, ...] | None = None
    missing: tuple[str, ...] = ()  # values that mean "missing" here, besides schema.missing_values
    positive: str | int | bool | None = None  # the target's positive label (default 1 / true)
    description: str = ""

    _strings = field_validator("categories", "missing", mode="before")(_no_yaml_booleans)

    @model_validator(mode="after")
    def _rules_fit_type(self) -> Self:
        numeric = self.type in (ColumnType.INT, ColumnType.FLOAT)
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"min/max only apply to int or float columns, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.type == ColumnType.CATEGORY and not self.categories:
            raise ValueError("a category column needs a non-empty 'categories' list")
        if self.categories is not None and self.type != ColumnType.CATEGORY:
            raise ValueError("'categories' only applies to category columns")
        if self.positive is not None and self.role != Role.TARGET:
            raise ValueError("'positive' only applies to the target column")
        if isinstance(self.positive, bool) and self.type != ColumnType.BOOL:
            raise ValueError(f"positive: got {self.positive!r}: {YAML_BOOLEAN}")
        if self.categories and self.positive is not None and self.positive not in self.categories:
            raise ValueError(
                f"positive {self.positive!r} is not one of the categories {list(self.categories)}"
            )
        return self

    @property
    def positive_label(self) -> str | int | bool:
        """The target value that means the positive class."""
        if self.positive is not None:
            return self.positive
        return True if self.type == ColumnType.BOOL else 1


class Schema(BaseModel):
    """The whole contract: ordered columns plus policies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, ColumnSpec] = Field(min_length=1)
    missing_values: tuple[str, ...] = ("",)  # in every column: read as missing
    strip_strings: bool = True  # trim spaces around text values before anything else
    _strings = field_validator("missing_values", mode="before")(_no_yaml_booleans)

    unknown_categories: str = Field(
        default="error", pattern="^(error|ignore)$", description="error: fail validation"
    )
    max_feature_auc: float = Field(
        default=0.99, gt=0.5, le=1.0, description="a feature alone this predictive is leakage"
    )

    @model_validator(mode="after")
    def _roles_are_consistent(self) -> Self:
        for role in (Role.ID, Role.TIME, Role.TARGET, Role.ENTITY):
            named = self.with_role(role)
            if len(named) > 1:
                raise ValueError(f"at most one column may have role '{role}', got {named}")
        if not self.with_role(Role.TARGET):
            raise ValueError("one column must have role 'target'")
        if not self.features:
            raise ValueError("at least one column must have role 'feature'")
        unusable = [
            name
            for name in self.features
            if self.columns[name].type in (ColumnType.STRING, ColumnType.DATETIME)
        ]
        if unusable:
            raise ValueError(
                f"features must be int, float, bool or category; give {unusable} another "
                "role (id, time, entity or ignore) or change their type"
            )
        time = self.time_column
        if time and self.columns[time].type != ColumnType.DATETIME:
            raise ValueError(f"time column '{time}' must have type 'datetime'")
        target = self.columns[self.target]
        labelled = (ColumnType.STRING, ColumnType.CATEGORY)
        if target.type in (ColumnType.DATETIME, ColumnType.FLOAT) or target.nullable:
            raise ValueError(
                f"target '{self.target}' must be a non-nullable int, bool, string or "
                "category column"
            )
        if target.type in labelled and target.positive is None:
            raise ValueError(
                f"target '{self.target}' holds labels: set its 'positive' label "
                '(e.g. positive: "Yes"); every other label is the negative class'
            )
        return self

    def with_role(self, role: Role) -> list[str]:
        """Column names with the given role, in declaration order."""
        return [name for name, spec in self.columns.items() if spec.role == role]

    def _single(self, role: Role) -> str | None:
        named = self.with_role(role)
        return named[0] if named else None

    @property
    def target(self) -> str:
        """The label column."""
        return self.with_role(Role.TARGET)[0]

    @property
    def id_column(self) -> str | None:
        """The row identifier, if any."""
        return self._single(Role.ID)

    @property
    def time_column(self) -> str | None:
        """The event-time column, if any; it drives the time split."""
        return self._single(Role.TIME)

    @property
    def entity_column(self) -> str | None:
        """The customer/card column, if any (sticky routing, per-entity features)."""
        return self._single(Role.ENTITY)

    @property
    def features(self) -> list[str]:
        """Model inputs, in declaration order."""
        return self.with_role(Role.FEATURE)

    @property
    def categorical_features(self) -> list[str]:
        """Features encoded by category."""
        return [c for c in self.features if self.columns[c].type == ColumnType.CATEGORY]

    @property
    def numeric_features(self) -> list[str]:
        """Features passed to the model as numbers (int, float and bool)."""
        return [c for c in self.features if self.columns[c].type != ColumnType.CATEGORY]
