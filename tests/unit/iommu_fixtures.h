// Synthetic intel-iommu driver files for the option transform and `relax-rmrr patch` tests. Written
// here from the shapes the real drivers have (the 5.4, 5.10, 6.1, 6.12 and 7.2 trees were read
// for facts), not copied. They are also complete C programs: compiled with the host gcc and run, they show
// what the patched code does (main() parses argv[1] like the kernel's intel_iommu= and prints the verdict).
#pragma once

#include <string>
#include <string_view>

namespace rr::test {

// The preamble that makes the fixtures plain user-space C.
inline constexpr std::string_view kHostPreamble = R"(#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#define __init
#define EINVAL 22
#define pr_info(...) do { } while (0)
#define pr_notice(...) do { } while (0)
#define pr_warn(...) printf("WARN: " __VA_ARGS__)
struct device { int is_pci; int class_code; };
struct pci_dev { int class_code; };
static struct pci_dev the_pdev __attribute__((unused));
#define dev_is_pci(d) ((d)->is_pci)
#define to_pci_dev(d) (the_pdev.class_code = (d)->class_code, &the_pdev)
#define IS_USB_DEVICE(p) ((p)->class_code == 0x0c03)
#define IS_GFX_DEVICE(p) ((p)->class_code == 0x0300)
)";

// 5.8-7.x shape: the option chain ends in a bare `else` that reports unknown options.
inline constexpr std::string_view kModernDriver = R"(
static int dmar_disabled;
static int intel_iommu_superpage = 1;

static int __init intel_iommu_setup(char *str)
{
	if (!str)
		return -EINVAL;

	while (*str) {
		if (!strncmp(str, "on", 2)) {
			dmar_disabled = 0;
			pr_info("IOMMU enabled\n");
		} else if (!strncmp(str, "off", 3)) {
			dmar_disabled = 1;
			pr_info("IOMMU disabled { not a brace }\n");
		} else if (!strncmp(str, "sp_off", 6)) {
			intel_iommu_superpage = 0;
		} else {
			pr_notice("Unknown option - '%s'\n", str);
		}

		str += strcspn(str, ",");
		while (*str == ',')
			str++;
	}

	return 1;
}

/**
 * device_rmrr_is_relaxable - whether the RMRRs of @dev may go unenforced
 */
static bool device_rmrr_is_relaxable(struct device *dev)
{
	struct pci_dev *pdev;

	if (!dev_is_pci(dev))
		return false;

	pdev = to_pci_dev(dev);
	if (IS_USB_DEVICE(pdev) || IS_GFX_DEVICE(pdev))
		return true;
	else
		return false;
}
)";

// 5.3-5.7 shape: no final `else`, `return 0`, and (to test the declaration's placement) the relaxable
// function, with a block comment above it, before the option parser; its body has no declarations.
inline constexpr std::string_view kOldDriver = R"(
static int dmar_disabled;

/*
 * Whether the RMRRs of a device may go unenforced.
 */
static bool device_rmrr_is_relaxable(struct device *dev)
{
	if (!dev_is_pci(dev))
		return false;
	return IS_USB_DEVICE(to_pci_dev(dev)) || IS_GFX_DEVICE(to_pci_dev(dev));
}

static int __init intel_iommu_setup(char *str)
{
	if (!str)
		return -EINVAL;
	while (*str) {
		if (!strncmp(str, "on", 2)) {
			dmar_disabled = 0;
		} else if (!strncmp(str, "off", 3)) {
			dmar_disabled = 1;
		}

		str += strcspn(str, ",");
		while (*str == ',')
			str++;
	}
	return 0;
}
)";

// Appended to a fixture to make it a program: `prog OPTIONS CLASS` prints "relaxable=0|1" for a PCI device
// of that class (hex) after parsing OPTIONS like intel_iommu=OPTIONS.
inline constexpr std::string_view kHostMain = R"(
int main(int argc, char **argv)
{
	struct device dev = { 1, 0 };
	char opts[256];

	if (argc != 3)
		return 2;
	snprintf(opts, sizeof(opts), "%s", argv[1]);
	intel_iommu_setup(opts);
	sscanf(argv[2], "%x", &dev.class_code);
	printf("relaxable=%d\n", device_rmrr_is_relaxable(&dev) ? 1 : 0);
	return 0;
}
)";

inline std::string host_program(std::string_view driver) {
  return std::string(kHostPreamble) + std::string(driver) + std::string(kHostMain);
}

}  // namespace rr::test
