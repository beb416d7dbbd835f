"""The grammar's light sections, apart from the scenario package (which assembles them with the
fault kinds and the checks, and so loads numpy): units (`units`), templates (`templates`), YAML
with positions (`yaml`), the validation context and `Section` (`section`), the app contract
(`contract`), and client behaviour (`behaviour`), which a swarm worker loads and nothing more.

Importing this package imports nothing: take each module by its name.
"""
