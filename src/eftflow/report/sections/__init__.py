"""Built-in report sections; every public module here is imported by the report and registers
its sections with :func:`eftflow.report.report_section`. Add a stage's section as a new module."""

__all__: list[str] = []
