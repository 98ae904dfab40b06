"""The bundled trainer: shipped to the GPU host alone and run there as `python -m trainer`.

It never imports `pacerid_tui`; the only thing it shares with the controller is the host
contract in DESIGN.md (the files it writes under the output folder) and the YAML config.
"""
