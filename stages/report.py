"""report stage: render reports/report.md and reports/figures/*.png from the run's metrics.

Runs after eval so every number in the report comes from this run's own outputs.
"""

from wikigpt.report import build_report
from wikigpt.stage import stage_main


@stage_main
def main() -> None:
    path = build_report(".", "reports/report.md", "reports/figures")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
