# ultralytics-weighted, AGPL-3.0 license
"""A stand-in for the few polars calls Ultralytics 8.4.190 makes while training and validating (standard library only).

For a machine without polars (it is too big to carry to the device machine): benchmarks/gpu_longtail_detection.py puts
this folder first on PYTHONPATH. Ultralytics imports polars, during `yolo train` and `yolo val` with `plots=False`, in
`BaseTrainer.read_results_csv` (every checkpoint save: `pl.read_csv(bytes, infer_schema_length=None).to_dict(
as_series=False)`) and in `DataExportMixin.to_df` / `to_csv` (`pl.DataFrame(rows).write_csv()`). Both are here;
anything else raises AttributeError, so a new use shows up instead of passing silently.
"""

from __future__ import annotations

import csv
import io


def _column(values: list[str]) -> list:
    """Type a CSV column as polars infers it from every row: int if all are, else float if all are, else str."""
    for kind in (int, float):
        try:
            return [kind(v) if v != "" else None for v in values]
        except ValueError:
            pass
    return [v if v != "" else None for v in values]


class DataFrame:
    """The part of `polars.DataFrame` Ultralytics uses: build from columns or rows, to_dict, write_csv."""

    def __init__(self, data=None, schema=None):
        """Build from a dict of columns, a list of row dicts, or a list of row sequences with `schema` names."""
        data = [] if data is None else data
        if isinstance(data, dict):
            self.columns = {k: list(v) for k, v in data.items()}
        elif data and isinstance(data[0], dict):
            names = list(dict.fromkeys(k for row in data for k in row))
            self.columns = {k: [row.get(k) for row in data] for k in names}
        else:
            self.columns = {k: [row[i] for row in data] for i, k in enumerate(schema or [])}

    def to_dict(self, as_series: bool = True) -> dict:
        """Return {column: list of values} (Ultralytics calls it with as_series=False)."""
        return {k: list(v) for k, v in self.columns.items()}

    def write_csv(self, file=None) -> str | None:
        """Return the CSV text, or write it to the path `file`."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(zip(*self.columns.values()))
        if file is None:
            return text.getvalue()
        with open(file, "w") as f:
            f.write(text.getvalue())


def read_csv(source, infer_schema_length=None) -> DataFrame:
    """Read CSV from a path or bytes (Ultralytics passes `Path.read_bytes()`), typing each column from all its rows."""
    text = source.decode() if isinstance(source, bytes) else open(source).read()
    header, *rows = list(csv.reader(io.StringIO(text)))
    return DataFrame({k: _column([row[i] for row in rows]) for i, k in enumerate(header)})
