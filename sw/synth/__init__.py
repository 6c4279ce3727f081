"""The FPGA build flow: yosys and nextpnr (YoWASP by default), utilisation and Fmax reports."""
