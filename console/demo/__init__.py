"""Training features, shipped with the console: demo data (`returns-console demo`), the simulated
clerk (`simulate clerk`) and simulated devices on real ptys (`simulate scanner`, `simulate scale`).

A new clerk practises on them; a supervisor shows the bench with them. Nothing in the product
depends on them.
"""
