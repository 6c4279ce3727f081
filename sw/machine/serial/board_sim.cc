// The board simulated by Verilator, its UART served on a pseudo-terminal.
//
// Prints the pseudo-terminal's path on a line of its own, then runs the board's clock until
// it is killed (or its parent exits): bytes the host writes to the terminal are driven onto
// the board's `rx` line, DIVISOR cycles a bit (8N1), and bytes the board sends on `tx` are
// written to the terminal. The board is held in reset for its first cycles, as on the FPGA.

#include "Vboard.h"
#include "verilated.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 2) {
		std::fprintf(stderr, "usage: %s DIVISOR\n", argv[0]);
		return 2;
	}
	const int divisor = std::atoi(argv[1]);
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	if (master < 0 || grantpt(master) || unlockpt(master)) {
		std::perror("posix_openpt");
		return 1;
	}
	const char *name = ptsname(master);
	// Held open so that the terminal stays up between the host's sessions; raw, so that no
	// byte is translated.
	int slave = open(name, O_RDWR | O_NOCTTY);
	struct termios raw;
	tcgetattr(slave, &raw);
	cfmakeraw(&raw);
	tcsetattr(slave, TCSANOW, &raw);
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	std::printf("%s\n", name);
	std::fflush(stdout);
	const pid_t parent = getppid();

	Vboard top;
	std::deque<unsigned char> to_board;
	int send_bit = -1, send_timer = 0;     // bit being driven (-1: idle)
	unsigned send_frame = 0;
	int recv_bit = -1, recv_timer = 0;     // bit being sampled (-1: waiting for a start bit)
	unsigned recv_byte = 0;
	top.rx = 1;
	top.rst = 1;
	for (uint64_t cycle = 0;; cycle++) {
		if (cycle == 8)
			top.rst = 0;
		if ((cycle & 0x3F) == 0) {
			unsigned char buffer[256];
			ssize_t got = read(master, buffer, sizeof buffer);
			for (ssize_t i = 0; i < got; i++)
				to_board.push_back(buffer[i]);
			if ((cycle & 0xFFFFF) == 0 && getppid() != parent)
				return 0;
		}
		if (send_bit < 0 && !to_board.empty()) {
			send_frame = (1u << 9) | (unsigned(to_board.front()) << 1);
			to_board.pop_front();
			send_bit = 0;
			send_timer = divisor;
		}
		if (send_bit >= 0) {
			top.rx = (send_frame >> send_bit) & 1;
			if (--send_timer == 0) {
				send_timer = divisor;
				if (++send_bit == 10)
					send_bit = -1;
			}
		} else {
			top.rx = 1;
		}
		top.clk = 0;
		top.eval();
		top.clk = 1;
		top.eval();
		if (recv_bit < 0) {
			if (!top.tx) {
				recv_bit = 0;
				recv_timer = divisor + divisor / 2;
				recv_byte = 0;
			}
		} else if (--recv_timer == 0) {
			recv_timer = divisor;
			if (recv_bit < 8) {
				recv_byte |= unsigned(top.tx) << recv_bit;
				recv_bit++;
			} else {
				unsigned char byte = recv_byte;
				while (write(master, &byte, 1) < 0 && errno == EAGAIN)
					;
				recv_bit = -1;
			}
		}
	}
}
