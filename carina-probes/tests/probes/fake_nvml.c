/*
 * A stand-in for libnvidia-ml.so.1, for the tests of Carina's NVML binding
 * (tests/probes/nvml_ffi.rs compiles it with the system C compiler and loads it by path).
 *
 * It exports the functions the binding resolves, with the prototypes and struct layouts that
 * nvml.h documents (NVML API version 12), and answers with scripted values that the tests
 * check after the round trip through the FFI: names, UUIDs, energy, power, process lists,
 * utilisation samples and error codes. Two GPUs:
 *
 *   0  "Fake GPU Zero": an energy counter at 250 W (driven by CLOCK_MONOTONIC), 250 W of
 *      power, compute processes 101 202 303, graphics processes that grow from 2 to 3 between
 *      the size query and the fill (7 8 9), utilisation samples for 101 (40 %), 202 (60 %)
 *      and 303 (0 %) one microsecond apart, time-stamped at the first query.
 *   1  a product name longer than 64 bytes, no energy counter (NOT_SUPPORTED), 75 W; its
 *      compute list is refused (NO_PERMISSION), its graphics list fails (GPU_IS_LOST), it has
 *      no utilisation (NOT_SUPPORTED).
 *
 * Build switches (-D): FAKE_INIT_RESULT=<code> makes nvmlInit_v2 fail with that code;
 * FAKE_OLD_DRIVER leaves out the optional functions (energy, _v3 lists, utilisation,
 * versions); FAKE_NO_HANDLE leaves out nvmlDeviceGetHandleByIndex_v2;
 * FAKE_SHUTDOWN_MARKER="<path>" writes that file when nvmlShutdown is called.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
    NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil;
    unsigned int memUtil;
    unsigned int encUtil;
    unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

#ifndef FAKE_INIT_RESULT
#define FAKE_INIT_RESULT NVML_SUCCESS
#endif

struct nvmlDevice_st {
    unsigned int index;
};

static struct nvmlDevice_st devices[2] = {{0}, {1}};
static int initialised;
#ifndef FAKE_OLD_DRIVER
static unsigned int graphics_calls;
static unsigned long long samples_base_us;
#endif

#define READY                                                                                  \
    do {                                                                                       \
        if (!initialised)                                                                      \
            return NVML_ERROR_UNINITIALIZED;                                                   \
    } while (0)

static int index_of(nvmlDevice_t d) {
    for (int i = 0; i < 2; i++)
        if (d == &devices[i])
            return i;
    return -1;
}

nvmlReturn_t nvmlInit_v2(void) {
    if (FAKE_INIT_RESULT != NVML_SUCCESS)
        return FAKE_INIT_RESULT;
    initialised++;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void) {
    READY;
    initialised--;
#ifdef FAKE_SHUTDOWN_MARKER
    FILE *f = fopen(FAKE_SHUTDOWN_MARKER, "w");
    if (f) {
        fputs("nvmlShutdown\n", f);
        fclose(f);
    }
#endif
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    READY;
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = 2;
    return NVML_SUCCESS;
}

#ifndef FAKE_NO_HANDLE
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    READY;
    if (index >= 2 || !device)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = &devices[index];
    return NVML_SUCCESS;
}
#endif

static nvmlReturn_t copy_string(const char *value, char *out, unsigned int length) {
    if (!out)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(value) + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, value);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    static const char *names[2] = {
        "Fake GPU Zero",
        "Fake GPU One, whose product name is longer than the 64 bytes of old buffers",
    };
    READY;
    int i = index_of(device);
    if (i < 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    return copy_string(names[i], name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    static const char *uuids[2] = {
        "GPU-00000000-1111-2222-3333-444444444444",
        "GPU-55555555-6666-7777-8888-999999999999",
    };
    READY;
    int i = index_of(device);
    if (i < 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    return copy_string(uuids[i], uuid, length);
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power) {
    READY;
    int i = index_of(device);
    if (i < 0 || !power)
        return NVML_ERROR_INVALID_ARGUMENT;
    *power = i == 0 ? 250000 : 75000;
    return NVML_SUCCESS;
}

#ifndef FAKE_OLD_DRIVER
nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    READY;
    return copy_string("999.99.99", version, length);
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
    READY;
    return copy_string("13.999.99.99", version, length);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device,
                                                 unsigned long long *energy) {
    READY;
    int i = index_of(device);
    if (i < 0 || !energy)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (i == 1)
        return NVML_ERROR_NOT_SUPPORTED;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long ns = (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
    /* 250 W is 250 mJ per ms: one millijoule every 4 microseconds. */
    *energy = 1000000ULL + ns / 4000ULL;
    return NVML_SUCCESS;
}

/* The list protocol: a count below what is needed gets NVML_ERROR_INSUFFICIENT_SIZE and the
   count needed; otherwise the entries and their number. */
static nvmlReturn_t fill(const unsigned int *pids, unsigned int needed, unsigned int *count,
                         nvmlProcessInfo_t *infos) {
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (*count < needed) {
        *count = needed;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (needed > 0 && !infos)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int k = 0; k < needed; k++) {
        infos[k].pid = pids[k];
        infos[k].usedGpuMemory = (unsigned long long)(k + 1) << 30;
        infos[k].gpuInstanceId = 0xFFFFFFFFu;
        infos[k].computeInstanceId = 0xFFFFFFFFu;
    }
    *count = needed;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                     unsigned int *infoCount,
                                                     nvmlProcessInfo_t *infos) {
    static const unsigned int pids[3] = {101, 202, 303};
    READY;
    int i = index_of(device);
    if (i < 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (i == 1)
        return NVML_ERROR_NO_PERMISSION;
    return fill(pids, 3, infoCount, infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device,
                                                      unsigned int *infoCount,
                                                      nvmlProcessInfo_t *infos) {
    static const unsigned int pids[3] = {7, 8, 9};
    READY;
    int i = index_of(device);
    if (i < 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (i == 1)
        return NVML_ERROR_GPU_IS_LOST;
    /* A third process starts between the first query and the next. */
    unsigned int needed = graphics_calls++ == 0 ? 2 : 3;
    return fill(pids, needed, infoCount, infos);
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device,
                                             nvmlProcessUtilizationSample_t *utilization,
                                             unsigned int *processSamplesCount,
                                             unsigned long long lastSeenTimeStamp) {
    static const unsigned int pids[3] = {101, 202, 303};
    static const unsigned int sm[3] = {40, 60, 0};
    READY;
    int i = index_of(device);
    if (i < 0 || !processSamplesCount)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (i == 1)
        return NVML_ERROR_NOT_SUPPORTED;
    if (samples_base_us == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        samples_base_us = (unsigned long long)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
    }
    unsigned int first = 0;
    while (first < 3 && samples_base_us + first <= lastSeenTimeStamp)
        first++;
    unsigned int needed = 3 - first;
    if (needed == 0)
        return NVML_ERROR_NOT_FOUND;
    if (!utilization || *processSamplesCount < needed) {
        *processSamplesCount = needed;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned int k = 0; k < needed; k++) {
        unsigned int s = first + k;
        utilization[k].pid = pids[s];
        utilization[k].timeStamp = samples_base_us + s;
        utilization[k].smUtil = sm[s];
        utilization[k].memUtil = 5 + s;
        utilization[k].encUtil = 0;
        utilization[k].decUtil = 0;
    }
    *processSamplesCount = needed;
    return NVML_SUCCESS;
}
#endif
