# Install-time part of `cmake --install` (packaging/CMakeLists.txt): the files
# whose place or content depends on the prefix given at install time
# (`cmake --install build --prefix P`, `make install PREFIX=P`), not the one
# the tree was configured with:
#   the configuration   P/etc/gpurm/gpu_config.yaml, /etc/gpurm/... when P is /usr
#   gpurm.service       P/lib/systemd/system/, its ExecStart naming P/bin/gpurm
#                       and that configuration file
# GPURM_SOURCE_DIR and GPURM_BINARY_DIR are set by the install(CODE) before it.
# file(INSTALL) honours DESTDIR and records the files in install_manifest.txt.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(sysconfdir /etc)
else()
  set(sysconfdir "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(GPURM_CONFIG_FILE "${sysconfdir}/gpurm/gpu_config.yaml")
set(GPURM_BINARY "${CMAKE_INSTALL_PREFIX}/bin/gpurm")
configure_file("${GPURM_SOURCE_DIR}/packaging/gpurm.service.in"
               "${GPURM_BINARY_DIR}/packaging/install/gpurm.service" @ONLY)
file(INSTALL DESTINATION "${sysconfdir}/gpurm" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${GPURM_SOURCE_DIR}/gpu_config.yaml")
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${GPURM_BINARY_DIR}/packaging/install/gpurm.service")
