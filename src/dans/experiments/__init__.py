"""The paper's study on top of the library: grids of runs (compare, ablate, sweep), the diversity
and visualisation analyses, and the tables and plots they report."""
