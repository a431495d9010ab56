//! RAPL through the powercap sysfs tree (in progress).
