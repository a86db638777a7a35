// dmar-add-rmrr: add RMRR structures to an ACPI DMAR table (for the kernel's ACPI table upgrade).
//
//   dmar-add-rmrr IN OUT [--oem-revision-bump N] --rmrr SPEC [--rmrr SPEC ...]
//
// SPEC is a comma-separated key=value list:
//   base=ADDR        first byte of the region (hex with 0x or decimal; 4 KiB aligned)
//   limit=ADDR       last byte of the region, inclusive (limit+1 4 KiB aligned)
//   segment=N        PCI segment (default 0)
//   endpoint=PATH    device scope type 1 (PCI endpoint)      } at least one scope, any number,
//   bridge=PATH      device scope type 2 (PCI sub-hierarchy) } in the given order
// PATH is START_BUS:DEV.FN[/DEV.FN...] (hex, like lspci): the start bus and the (device, function)
// hops from it, e.g. 00:03.0 or, behind the root port 00:06.0, 00:06.0/00.0.
//
// The new structures go after the existing DRHD/RMRR structures (the DMAR order), the header length and
// checksum are fixed and the OEM revision is raised (by 1 by default): Linux's table upgrade ignores an
// override whose OEM revision is not above the firmware table's.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DMAR_HEADER_LEN 48
#define ACPI_HEADER_LEN 36
#define MAX_TABLE (1u << 20)
#define MAX_PATH_HOPS 16

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "dmar-add-rmrr: ");
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(1);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16); }
static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
  put16(p, (uint16_t)v);
  put16(p + 2, (uint16_t)(v >> 16));
}
static void put64(uint8_t *p, uint64_t v) {
  put32(p, (uint32_t)v);
  put32(p + 4, (uint32_t)(v >> 32));
}

// A growing byte buffer holding the RMRR structures to insert.
struct buf {
  uint8_t *data;
  size_t len, cap;
};
static uint8_t *buf_grow(struct buf *b, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n) cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data) die("%s", "out of memory");
    b->cap = cap;
  }
  uint8_t *p = b->data + b->len;
  memset(p, 0, n);
  b->len += n;
  return p;
}

static uint64_t parse_u64(const char *s, const char *what) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s || *end) die("bad number for %s", what);
  return v;
}

static unsigned parse_hex_field(const char **s, unsigned max, const char *path) {
  char *end = NULL;
  unsigned long v = strtoul(*s, &end, 16);
  if (end == *s || v > max) die("bad device path '%s' (expected BUS:DEV.FN[/DEV.FN...], hex)", path);
  *s = end;
  return (unsigned)v;
}

// Appends one device scope for PATH ("00:06.0/00.0") of TYPE to b.
static void add_scope(struct buf *b, uint8_t type, const char *path) {
  const char *s = path;
  unsigned bus = parse_hex_field(&s, 0xff, path);
  if (*s++ != ':') die("bad device path '%s': missing ':' after the start bus", path);
  uint8_t hops[MAX_PATH_HOPS][2];
  size_t n = 0;
  for (;;) {
    if (n == MAX_PATH_HOPS) die("device path '%s' is too long", path);
    hops[n][0] = (uint8_t)parse_hex_field(&s, 0x1f, path);
    if (*s++ != '.') die("bad device path '%s': expected DEV.FN", path);
    hops[n][1] = (uint8_t)parse_hex_field(&s, 0x7, path);
    n++;
    if (*s == '\0') break;
    if (*s++ != '/') die("bad device path '%s': hops are separated by '/'", path);
  }
  size_t len = 6 + 2 * n;
  uint8_t *p = buf_grow(b, len);
  p[0] = type;
  p[1] = (uint8_t)len;
  // p[2..3] reserved, p[4] enumeration id (0 for PCI scopes)
  p[5] = (uint8_t)bus;
  for (size_t i = 0; i < n; i++) {
    p[6 + 2 * i] = hops[i][0];
    p[7 + 2 * i] = hops[i][1];
  }
}

// Appends one RMRR structure described by SPEC to b.
static void add_rmrr(struct buf *b, const char *spec_in) {
  char *spec = strdup(spec_in);
  if (!spec) die("%s", "out of memory");
  size_t start = b->len;
  uint8_t *hdr = buf_grow(b, 24);
  (void)hdr;
  int have_base = 0, have_limit = 0, nscopes = 0;
  uint64_t base = 0, limit = 0, segment = 0;
  char *save = NULL;
  for (char *tok = strtok_r(spec, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq) die("bad --rmrr item '%s' (expected key=value)", tok);
    *eq = '\0';
    const char *val = eq + 1;
    if (!strcmp(tok, "base")) {
      base = parse_u64(val, "base");
      have_base = 1;
    } else if (!strcmp(tok, "limit")) {
      limit = parse_u64(val, "limit");
      have_limit = 1;
    } else if (!strcmp(tok, "segment")) {
      segment = parse_u64(val, "segment");
      if (segment > 0xffff) die("%s", "segment above 0xffff");
    } else if (!strcmp(tok, "endpoint")) {
      add_scope(b, 1, val);
      nscopes++;
    } else if (!strcmp(tok, "bridge")) {
      add_scope(b, 2, val);
      nscopes++;
    } else {
      die("unknown --rmrr key '%s' (base, limit, segment, endpoint, bridge)", tok);
    }
  }
  if (!have_base || !have_limit) die("--rmrr '%s' needs base= and limit=", spec_in);
  if (limit < base) die("--rmrr '%s': limit below base", spec_in);
  if ((base & 0xfff) || ((limit + 1) & 0xfff)) die("--rmrr '%s': base and limit+1 must be 4 KiB aligned", spec_in);
  if (nscopes == 0) die("--rmrr '%s' has no endpoint= or bridge= scope", spec_in);
  size_t len = b->len - start;
  if (len > 0xffff) die("--rmrr '%s' is too long", spec_in);
  uint8_t *p = b->data + start;  // b->data may have moved: take the pointer only now
  put16(p + 0, 1);               // type RMRR
  put16(p + 2, (uint16_t)len);
  put16(p + 6, (uint16_t)segment);
  put64(p + 8, base);
  put64(p + 16, limit);
  free(spec);
}

static uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open %s", path);
  uint8_t *data = malloc(MAX_TABLE);
  if (!data) die("%s", "out of memory");
  *size = fread(data, 1, MAX_TABLE, f);
  if (ferror(f)) die("cannot read %s", path);
  fclose(f);
  return data;
}

int main(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  uint32_t bump = 1;
  struct buf add = {0};
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--rmrr") && i + 1 < argc) {
      add_rmrr(&add, argv[++i]);
    } else if (!strcmp(argv[i], "--oem-revision-bump") && i + 1 < argc) {
      uint64_t v = parse_u64(argv[++i], "--oem-revision-bump");
      if (v == 0 || v > 0xffff) die("%s", "--oem-revision-bump must be 1..65535");
      bump = (uint32_t)v;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      die("unknown or incomplete option %s", argv[i]);
    } else if (!in) {
      in = argv[i];
    } else if (!out) {
      out = argv[i];
    } else {
      die("unexpected argument %s", argv[i]);
    }
  }
  if (!in || !out || add.len == 0) {
    fprintf(stderr,
            "usage: dmar-add-rmrr IN OUT [--oem-revision-bump N] --rmrr "
            "base=A,limit=B,{endpoint|bridge}=BUS:DEV.FN[/DEV.FN...][,...] [--rmrr ...]\n");
    return 2;
  }

  size_t size = 0;
  uint8_t *t = read_file(in, &size);
  if (size < DMAR_HEADER_LEN || memcmp(t, "DMAR", 4)) die("%s is not a DMAR table", in);
  uint32_t len = get32(t + 4);
  if (len < DMAR_HEADER_LEN || len > size) die("%s: header length disagrees with the file size", in);
  uint8_t sum = 0;
  for (uint32_t i = 0; i < len; i++) sum = (uint8_t)(sum + t[i]);
  if (sum) fprintf(stderr, "dmar-add-rmrr: warning: %s has a bad checksum; writing a correct one\n", in);

  // Insert before the first structure that must come after RMRRs (type > 1).
  uint32_t at = DMAR_HEADER_LEN;
  while (at + 4 <= len) {
    uint16_t type = get16(t + at), slen = get16(t + at + 2);
    if (slen < 4 || at + slen > len) die("%s: malformed remapping structure", in);
    if (type > 1) break;
    at += slen;
  }
  if ((uint64_t)len + add.len > MAX_TABLE) die("%s", "resulting table too large");
  uint32_t new_len = len + (uint32_t)add.len;
  uint8_t *o = malloc(new_len);
  if (!o) die("%s", "out of memory");
  memcpy(o, t, at);
  memcpy(o + at, add.data, add.len);
  memcpy(o + at + add.len, t + at, len - at);

  put32(o + 4, new_len);
  uint32_t oem_rev = get32(o + 24);
  if (oem_rev > UINT32_MAX - bump) die("%s", "OEM revision would overflow");
  put32(o + 24, oem_rev + bump);
  o[9] = 0;
  sum = 0;
  for (uint32_t i = 0; i < new_len; i++) sum = (uint8_t)(sum + o[i]);
  o[9] = (uint8_t)(0x100 - sum);

  FILE *f = fopen(out, "wb");
  if (!f) die("cannot create %s", out);
  if (fwrite(o, 1, new_len, f) != new_len || fclose(f)) die("cannot write %s", out);
  fprintf(stderr, "dmar-add-rmrr: %s: %u -> %u bytes, OEM revision %u -> %u\n", out, len, new_len, oem_rev,
          oem_rev + bump);
  free(o);
  free(t);
  free(add.data);
  return 0;
}
