// The SoC as a Verilator model, for the driver loops of sw/machine/compiled/driver.cc.
//
// The model is the class Verilator made of the SoC's flattened Verilog (`Vsoc`). Its ports
// and the DDR banks are members whose C++ names Verilator encodes from the Verilog ones;
// `ports.h`, which the builder generates beside the model, lists them by their Verilog and
// CXXRTL names (`soc_table`), so that the driver finds them by the same names on every
// backend. A port's C++ type follows its width (8, 16, 32 or 64 bits, or 32-bit words).

#include "Vsoc.h"
#include "Vsoc___024root.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rows.h"

struct PortRef {
	const char *name;
	void *data;
	uint32_t width;
	bool input;
};

struct BankRef {
	const char *name;
	void *rows;
	uint64_t depth;
	uint32_t width;
	size_t stride;   // bytes from one row to the next
};

#include "ports.h"

// Verilator finds a rising edge by comparing the clock with the level it had at the previous
// evaluation, which the model keeps in a member of its root. Where that member is there (under
// this name, which is Verilator's), a cycle in which no input changed needs no evaluation with
// the clock low: the design is settled already, and the low level can be recorded directly.
template <typename Root, typename = void>
struct RemembersClock : std::false_type {};
template <typename Root>
struct RemembersClock<Root, decltype(void(std::declval<Root &>().__Vtrigprevexpr___TOP__clk__0))>
	: std::true_type {};

template <typename Root>
bool record_clock_low(Root *root, std::true_type) {
	root->__Vtrigprevexpr___TOP__clk__0 = 0;
	return true;
}

template <typename Root>
bool record_clock_low(Root *, std::false_type) {
	return false;
}

class Model {
	std::unique_ptr<VerilatedContext> context;
	std::unique_ptr<Vsoc> top;
	std::vector<PortRef> table;
	std::vector<BankRef> bank_table;
	std::vector<const PortRef *> port;
	std::vector<const BankRef *> banks;
	// An input's value as the driver set it; an output's as `get` last read it.
	std::vector<std::vector<uint32_t>> value;
	// The output ports as the last edge sampled them, and which they are.
	std::vector<std::vector<uint32_t>> sampled;
	std::vector<int> sampled_ports;
	std::vector<int> staged;      // inputs set through `payload` since the last evaluation
	bool dirty = true;            // inputs or state changed since the design last settled
	uint64_t half_period = 5;     // VCD time units per clock phase
#if VM_TRACE
	std::unique_ptr<VerilatedVcdC> vcd;
#endif

	static void load(const PortRef &ref, uint32_t *chunks) {
		if (ref.width <= 8)
			chunks[0] = *static_cast<const uint8_t *>(ref.data);
		else if (ref.width <= 16)
			chunks[0] = *static_cast<const uint16_t *>(ref.data);
		else if (ref.width <= 32)
			chunks[0] = *static_cast<const uint32_t *>(ref.data);
		else if (ref.width <= 64) {
			uint64_t word = *static_cast<const uint64_t *>(ref.data);
			chunks[0] = uint32_t(word);
			chunks[1] = uint32_t(word >> 32);
		} else
			memcpy(chunks, ref.data, (ref.width + 31) / 32 * sizeof(uint32_t));
	}

	static void store(const PortRef &ref, const uint32_t *chunks) {
		if (ref.width <= 8)
			*static_cast<uint8_t *>(ref.data) = uint8_t(chunks[0]);
		else if (ref.width <= 16)
			*static_cast<uint16_t *>(ref.data) = uint16_t(chunks[0]);
		else if (ref.width <= 32)
			*static_cast<uint32_t *>(ref.data) = chunks[0];
		else if (ref.width <= 64)
			*static_cast<uint64_t *>(ref.data) = chunks[0] | uint64_t(chunks[1]) << 32;
		else
			memcpy(ref.data, chunks, (ref.width + 31) / 32 * sizeof(uint32_t));
	}

	void set_clock(bool level) {
		*static_cast<uint8_t *>(port[0]->data) = level;
	}

	void eval() {
		for (int index : staged)
			store(*port[index], value[index].data());
		staged.clear();
		top->eval();
		dirty = false;
	}

	bool tracing() const {
#if VM_TRACE
		return bool(vcd);
#else
		return false;
#endif
	}

	void dump(uint64_t time) {
#if VM_TRACE
		if (vcd)
			vcd->dump(time);
#endif
	}

public:
	uint64_t cycles = 0;          // rising edges so far

	~Model() {
#if VM_TRACE
		if (vcd) {
			eval();
			dump(2 * half_period * cycles);
			vcd->close();
		}
#endif
		if (top)
			top->final();
	}

	// Port 0 is the clock.
	std::string open(const char *const *port_names, int port_count,
	                 const char *const *bank_names, const uint64_t *bank_rows,
	                 uint32_t bank_count, uint32_t row_width) {
		context.reset(new VerilatedContext);
#if VM_TRACE
		context->traceEverOn(true);
#endif
		top.reset(new Vsoc(context.get(), "soc"));
		soc_table(top.get(), table, bank_table);
		auto find_port = [&](const char *name) -> const PortRef * {
			for (const PortRef &ref : table)
				if (name == std::string(ref.name))
					return &ref;
			return nullptr;
		};
		for (int index = 0; index < port_count; index++) {
			const PortRef *ref = find_port(port_names[index]);
			if (!ref)
				return std::string("the design has no port '") + port_names[index] + "'";
			port.push_back(ref);
			value.emplace_back((ref->width + 31) / 32);
			sampled.emplace_back(ref->input ? 0 : (ref->width + 31) / 32);
			if (!ref->input)
				sampled_ports.push_back(index);
		}
		for (uint32_t index = 0; index < bank_count; index++) {
			const BankRef *found = nullptr;
			for (const BankRef &ref : bank_table)
				if (bank_names[index] == std::string(ref.name))
					found = &ref;
			if (!found || found->width != row_width || found->depth != bank_rows[index])
				return std::string("the design has no memory '") + bank_names[index] +
				       "' of " + std::to_string(bank_rows[index]) + " rows of " +
				       std::to_string(row_width) + " bits";
			// Memories start at zero, as in the other backends.
			memset(found->rows, 0, found->depth * found->stride);
			banks.push_back(found);
		}
		set_clock(false);
		eval();
		return "";
	}

	size_t chunks(int index) const {
		return (port[index]->width + 31) / 32;
	}

	// A port as the design drives it now.
	const uint32_t *get(int index) {
		if (dirty)
			eval();
		if (!port[index]->input)
			load(*port[index], value[index].data());
		return value[index].data();
	}

	const uint32_t *at_edge(int index) const {
		return sampled[index].data();
	}

	void skip_at_edge(int index) {
		sampled[index].clear();
		sampled_ports.erase(std::remove(sampled_ports.begin(), sampled_ports.end(), index),
		                    sampled_ports.end());
	}

	// An output driven by flip-flops as the last edge left it (the design is settled after
	// an edge).
	const uint32_t *after_edge(int index) {
		load(*port[index], value[index].data());
		return value[index].data();
	}

	void set_flag(int index, bool level) {
		uint8_t *data = static_cast<uint8_t *>(port[index]->data);
		if ((*data & 1) != level) {
			*data = (*data & ~1u) | level;
			value[index][0] = *data;
			dirty = true;
		}
	}

	uint32_t *payload(int index) {
		staged.push_back(index);
		dirty = true;
		return value[index].data();
	}

	// One clock cycle, ending with its rising edge; inputs set before it take effect at once.
	//
	// The clock falls and the design settles with the inputs as set: its outputs are what
	// the rising edge samples (`at_edge`). (If no input changed since the last evaluation,
	// the design is settled already: see RemembersClock.) Then the clock rises, the
	// flip-flops take their next values and the design settles again, ready to be read
	// (`get`).
	void edge() {
		set_clock(false);
		if (dirty || tracing() ||
		    !record_clock_low(top->rootp, RemembersClock<Vsoc___024root>{}))
			eval();
		dump(2 * half_period * cycles);
		for (int index : sampled_ports)
			load(*port[index], sampled[index].data());
		set_clock(true);
		eval();
		cycles++;
		dump(2 * half_period * cycles - half_period);
	}

	int vcd_open(const char *path, uint32_t period, const char *unit) {
#if VM_TRACE
		vcd.reset(new VerilatedVcdC);
		top->trace(vcd.get(), 99);
		std::string resolution = std::string("1") + unit;
		vcd->set_time_unit(resolution.c_str());
		vcd->set_time_resolution(resolution.c_str());
		vcd->open(path);
		if (!vcd->isOpen()) {
			vcd.reset();
			return -1;
		}
		half_period = period;
		eval();
		dump(2 * half_period * cycles);
		return 0;
#else
		(void)path, (void)period, (void)unit;
		return -2;
#endif
	}

	void backdoor(uint32_t bank, uint64_t offset, uint8_t *buffer, uint64_t size, bool write) {
		const BankRef *memory = banks[bank];
		copy_rows(static_cast<uint8_t *>(memory->rows), memory->width / 8, memory->stride,
		          offset, buffer, size, write);
		if (write)
			dirty = true;     // an asynchronous read port may show the new contents
	}
};
