/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The grammar of the `devices` selection: one definition, compiled into the livepatch module (which parses what
 * root writes to /sys/module/<name>/parameters/devices) and into the relax-rmrr tool (which checks a list before
 * it writes or persists it), so both accept and refuse exactly the same text.
 *
 *   list    = [ address *( "," address ) ] [ "\n" ]     (empty: every RMRR device, as without a selection)
 *   address = [ domain ":" ] bus ":" device "." function
 *   domain  = 1*8 hex, at most 7fffffff   bus = 1*2 hex   device = 1*2 hex, at most 1f   function = 1 hex, at most 7
 *
 * Written in the subset of C that C++ also compiles; the includer provides size_t (linux/types.h, <cstddef>).
 */
#ifndef RELAX_RMRR_DEVICES_H
#define RELAX_RMRR_DEVICES_H

#define RELAX_RMRR_MAX_DEVICES 64
#define RELAX_RMRR_MAX_DEVICES_TEXT 1024 /* longer input is refused before it is parsed */

struct relax_rmrr_device {
	unsigned int domain;
	unsigned int bus; /* 0..ff */
	unsigned int devfn; /* device << 3 | function, as the kernel's PCI_DEVFN() */
};

struct relax_rmrr_devices {
	unsigned int count;
	struct relax_rmrr_device dev[RELAX_RMRR_MAX_DEVICES];
};

enum relax_rmrr_devices_error {
	RELAX_RMRR_DEVICES_OK = 0,
	RELAX_RMRR_DEVICES_SYNTAX, /* not the grammar above */
	RELAX_RMRR_DEVICES_RANGE, /* a number out of its range: an address no PCI device can have */
	RELAX_RMRR_DEVICES_TOO_MANY, /* more than RELAX_RMRR_MAX_DEVICES different addresses */
	RELAX_RMRR_DEVICES_TOO_LONG, /* more than RELAX_RMRR_MAX_DEVICES_TEXT characters */
};

static inline int relax_rmrr_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads 1..max_digits hex digits at text[*at]; -1 when there is none or too many. */
static inline long relax_rmrr_hex_field(const char *text, size_t len, size_t *at, int max_digits)
{
	long value = 0;
	int digits = 0;

	while (*at < len && relax_rmrr_hex_digit(text[*at]) >= 0) {
		if (++digits > max_digits)
			return -1;
		value = value * 16 + relax_rmrr_hex_digit(text[*at]);
		(*at)++;
	}
	return digits ? value : -1;
}

static inline int relax_rmrr_device_before(const struct relax_rmrr_device *a, const struct relax_rmrr_device *b)
{
	if (a->domain != b->domain)
		return a->domain < b->domain;
	if (a->bus != b->bus)
		return a->bus < b->bus;
	return a->devfn < b->devfn;
}

/*
 * Parses `text` (len bytes, no terminator needed) into `out`, sorted and without duplicates. On an error `out` is
 * left as it was and *error_at holds the offset of the first character that is wrong.
 */
static inline enum relax_rmrr_devices_error relax_rmrr_parse_devices(const char *text, size_t len, struct relax_rmrr_devices *out,
								     size_t *error_at)
{
	struct relax_rmrr_devices list;
	size_t at = 0;

	*error_at = 0;
	if (len > RELAX_RMRR_MAX_DEVICES_TEXT) {
		*error_at = RELAX_RMRR_MAX_DEVICES_TEXT;
		return RELAX_RMRR_DEVICES_TOO_LONG;
	}
	if (len > 0 && text[len - 1] == '\n') /* what `echo` adds */
		len--;
	list.count = 0;
	while (at < len) {
		long first, second, device, function, domain = 0, bus;
		size_t start = at, field = at;
		struct relax_rmrr_device d;
		unsigned int i, j;

		first = relax_rmrr_hex_field(text, len, &at, 8);
		if (first < 0 || at >= len || text[at] != ':')
			goto syntax;
		at++;
		field = at;
		second = relax_rmrr_hex_field(text, len, &at, 8);
		if (second < 0 || at >= len)
			goto syntax;
		if (text[at] == ':') { /* domain:bus:device.function */
			if (at - field > 2)
				goto range_at_field;
			domain = first;
			bus = second;
			at++;
			field = at;
			device = relax_rmrr_hex_field(text, len, &at, 2);
			if (device < 0)
				goto syntax;
		} else { /* bus:device.function */
			if (field - 1 - start > 2) {
				field = start;
				goto range_at_field;
			}
			bus = first;
			device = second;
			if (at - field > 2)
				goto range_at_field;
		}
		if (at >= len || text[at] != '.')
			goto syntax;
		if (device > 0x1f)
			goto range_at_field;
		at++;
		field = at;
		function = relax_rmrr_hex_field(text, len, &at, 1);
		if (function < 0)
			goto syntax;
		if (function > 7)
			goto range_at_field;
		if (domain > 0x7fffffffL) {
			field = start;
			goto range_at_field;
		}
		if (at < len && text[at] != ',')
			goto syntax;
		if (at < len && at + 1 == len) /* a trailing comma */
			goto syntax;
		if (at < len)
			at++;
		d.domain = (unsigned int)domain;
		d.bus = (unsigned int)bus;
		d.devfn = (unsigned int)((device << 3) | function);
		/* Insert in order; an address given twice is kept once. */
		for (i = 0; i < list.count && relax_rmrr_device_before(&list.dev[i], &d); i++)
			;
		if (i < list.count && !relax_rmrr_device_before(&d, &list.dev[i]))
			continue;
		if (list.count == RELAX_RMRR_MAX_DEVICES) {
			*error_at = start;
			return RELAX_RMRR_DEVICES_TOO_MANY;
		}
		for (j = list.count; j > i; j--)
			list.dev[j] = list.dev[j - 1];
		list.dev[i] = d;
		list.count++;
		continue;
range_at_field:
		*error_at = field;
		return RELAX_RMRR_DEVICES_RANGE;
syntax:
		*error_at = at;
		return RELAX_RMRR_DEVICES_SYNTAX;
	}
	*out = list;
	return RELAX_RMRR_DEVICES_OK;
}

/* Whether `list` names the device at domain:bus:devfn. */
static inline int relax_rmrr_devices_contain(const struct relax_rmrr_devices *list, unsigned int domain, unsigned int bus,
					     unsigned int devfn)
{
	unsigned int i;

	for (i = 0; i < list->count; i++)
		if (list->dev[i].domain == domain && list->dev[i].bus == bus && list->dev[i].devfn == devfn)
			return 1;
	return 0;
}

/* The normalised text of a selection ("0000:03:00.0,0000:05:00.1", each address as sysfs names the device), always terminated; the length written. */
static inline size_t relax_rmrr_format_devices(const struct relax_rmrr_devices *list, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;
	unsigned int i;

	if (size == 0)
		return 0;
	for (i = 0; i < list->count; i++) {
		const struct relax_rmrr_device *d = &list->dev[i];
		char one[20];
		size_t k = 0, m;
		int shift;

		if (i)
			one[k++] = ',';
		/* At least four digits, as the kernel names PCI devices (pci_name(), sysfs): "%04x". */
		for (shift = 28; shift > 12 && !(d->domain >> shift); shift -= 4)
			;
		for (; shift >= 0; shift -= 4)
			one[k++] = hex[(d->domain >> shift) & 0xf];
		one[k++] = ':';
		one[k++] = hex[(d->bus >> 4) & 0xf];
		one[k++] = hex[d->bus & 0xf];
		one[k++] = ':';
		one[k++] = hex[(d->devfn >> 7) & 0x1];
		one[k++] = hex[(d->devfn >> 3) & 0xf];
		one[k++] = '.';
		one[k++] = hex[d->devfn & 0x7];
		for (m = 0; m < k && n + 1 < size; m++)
			buf[n++] = one[m];
	}
	buf[n] = '\0';
	return n;
}

#endif /* RELAX_RMRR_DEVICES_H */
