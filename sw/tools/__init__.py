"""The external tools the project runs: the YoWASP yosys and nextpnr, and the netlists of our
designs that yosys prepares for every simulator."""
