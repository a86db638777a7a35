// vfio-attach: try to put one PCI device's IOMMU group into a VFIO type1v2 container.
//
//   vfio-attach [--map] BDF          e.g. vfio-attach 0000:00:03.0
//
// Prints exactly one line on stdout and exits with:
//   0  ATTACH OK bdf=B group=N iommu=type1v2 [map=ok]
//   1  ATTACH FAIL bdf=B group=N stage=S errno=NAME(num) msg="..."
//   2  ATTACH ERROR bdf=B stage=S errno=... msg="..."   (the test environment is broken, not the attach)
// S is the step that failed: set_container (the kernel attaches a DMA-blocking domain here since 6.1,
// where an RMRR-locked device is refused) or set_iommu (the type1 domain attach) or map (--map: a 4 KiB
// VFIO_IOMMU_MAP_DMA at IOVA 256 MiB, proving the domain works).
// Written against the uAPI in <linux/vfio.h> (statically linked for a busybox initramfs).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/vfio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case E2BIG: return "E2BIG";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ENOTTY: return "ENOTTY";
    case ENOSYS: return "ENOSYS";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "E?";
  }
}

static const char *g_bdf = "?";
static int g_group = -1;

// kind: "FAIL" (exit 1) or "ERROR" (exit 2)
static int report(const char *kind, const char *stage, int err, const char *what) {
  printf("ATTACH %s bdf=%s group=%d stage=%s errno=%s(%d) msg=\"%s: %s\"\n", kind, g_bdf, g_group, stage,
         errno_name(err), err, what, strerror(err));
  fflush(stdout);
  return kind[0] == 'F' ? 1 : 2;
}

static int group_of(const char *bdf) {
  char link[PATH_MAX], target[PATH_MAX];
  snprintf(link, sizeof link, "/sys/bus/pci/devices/%s/iommu_group", bdf);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return -1;
  target[n] = '\0';
  const char *slash = strrchr(target, '/');
  const char *num = slash ? slash + 1 : target;
  char *end = NULL;
  long g = strtol(num, &end, 10);
  if (end == num || *end != '\0' || g < 0 || g > INT_MAX) {
    errno = EINVAL;
    return -1;
  }
  return (int)g;
}

static int map_one_page(int container) {
  size_t size = 4096;
  void *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return -1;
  memset(buf, 0, size);
  struct vfio_iommu_type1_dma_map map;
  memset(&map, 0, sizeof map);
  map.argsz = sizeof map;
  map.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  map.vaddr = (unsigned long)buf;
  map.iova = 0x10000000ULL;
  map.size = size;
  if (ioctl(container, VFIO_IOMMU_MAP_DMA, &map) < 0) return -1;
  struct vfio_iommu_type1_dma_unmap unmap;
  memset(&unmap, 0, sizeof unmap);
  unmap.argsz = sizeof unmap;
  unmap.iova = map.iova;
  unmap.size = size;
  if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0) return -1;
  munmap(buf, size);
  return 0;
}

int main(int argc, char **argv) {
  int do_map = 0;
  const char *hold_until = NULL;  // --hold FILE: stay attached until FILE exists, then map again
  int argi = 1;
  for (; argi < argc && argv[argi][0] == '-'; argi++) {
    if (strcmp(argv[argi], "--map") == 0) {
      do_map = 1;
    } else if (strcmp(argv[argi], "--hold") == 0 && argi + 1 < argc) {
      hold_until = argv[++argi];
    } else {
      break;
    }
  }
  if (argi + 1 != argc) {
    fprintf(stderr, "usage: %s [--map] [--hold FILE] DOMAIN:BUS:DEV.FN\n", argv[0]);
    return 2;
  }
  g_bdf = argv[argi];

  g_group = group_of(g_bdf);
  if (g_group < 0) return report("ERROR", "iommu_group", errno, "no iommu_group link for the device");

  int container = open("/dev/vfio/vfio", O_RDWR);
  if (container < 0) return report("ERROR", "open_container", errno, "open /dev/vfio/vfio");
  int api = ioctl(container, VFIO_GET_API_VERSION);
  if (api != VFIO_API_VERSION) return report("ERROR", "api_version", EINVAL, "unexpected VFIO API version");
  if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
    return report("ERROR", "check_extension", ENOTTY, "container lacks VFIO_TYPE1v2_IOMMU");

  char path[64];
  snprintf(path, sizeof path, "/dev/vfio/%d", g_group);
  int group = open(path, O_RDWR);
  if (group < 0) return report("ERROR", "open_group", errno, path);

  struct vfio_group_status status;
  memset(&status, 0, sizeof status);
  status.argsz = sizeof status;
  if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0)
    return report("ERROR", "group_status", errno, "VFIO_GROUP_GET_STATUS");
  if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
    return report("ERROR", "group_viable", EBUSY, "group not viable: a device in it is not bound to vfio");

  if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
    return report("FAIL", "set_container", errno, "VFIO_GROUP_SET_CONTAINER");
  if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
    return report("FAIL", "set_iommu", errno, "VFIO_SET_IOMMU(VFIO_TYPE1v2_IOMMU)");
  if (do_map && map_one_page(container) < 0) return report("FAIL", "map", errno, "VFIO_IOMMU_MAP_DMA");

  printf("ATTACH OK bdf=%s group=%d iommu=type1v2%s\n", g_bdf, g_group, do_map ? " map=ok" : "");
  fflush(stdout);
  if (hold_until) {
    // A VM keeps its device while the host changes: wait (bounded), then prove the domain still maps.
    for (int i = 0; i < 2400 && access(hold_until, F_OK) != 0; i++) usleep(50 * 1000);
    if (access(hold_until, F_OK) != 0) return report("ERROR", "hold", ETIMEDOUT, "release file never appeared");
    if (map_one_page(container) < 0) return report("FAIL", "map_after_hold", errno, "VFIO_IOMMU_MAP_DMA after holding");
    printf("HELD OK bdf=%s group=%d map=ok\n", g_bdf, g_group);
    fflush(stdout);
  }
  ioctl(group, VFIO_GROUP_UNSET_CONTAINER);
  close(group);
  close(container);
  return 0;
}
