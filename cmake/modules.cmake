# One static library per module. Each module has a layer; a module may only
# link modules of a strictly lower layer, so the dependency graph cannot have
# cycles and data flows one way:
#   core, guard(0) -> codec, strict_yaml(1) -> auth, config, inventory, integrations,
#   kube, agent_client(2) -> scheduler, ledger, monitor, kube_inventory, agent_inventory(3) ->
#   manager(4) ->
#   api, cli(5) -> daemon(6)
set(GPURM_LAYER_core 0)
set(GPURM_LAYER_guard 0)
set(GPURM_LAYER_codec 1)
set(GPURM_LAYER_strict_yaml 1)
set(GPURM_LAYER_auth 2)
set(GPURM_LAYER_config 2)
set(GPURM_LAYER_inventory 2)
set(GPURM_LAYER_integrations 2)
set(GPURM_LAYER_kube 2)
set(GPURM_LAYER_agent_client 2)
set(GPURM_LAYER_scheduler 3)
set(GPURM_LAYER_ledger 3)
set(GPURM_LAYER_monitor 3)
set(GPURM_LAYER_kube_inventory 3)
set(GPURM_LAYER_agent_inventory 3)
set(GPURM_LAYER_manager 4)
set(GPURM_LAYER_simulator 4)
set(GPURM_LAYER_api 5)
set(GPURM_LAYER_cli 5)
set(GPURM_LAYER_daemon 6)

# gpurm_module(NAME SOURCES a.cc b.cc MODULES core ... LIBS external ...)
# Defines the static library gpurm_<NAME> and fails configuration when it
# depends on a module of the same or a higher layer.
function(gpurm_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;MODULES;LIBS" ${ARGN})
  if(NOT DEFINED GPURM_LAYER_${name})
    message(FATAL_ERROR "module '${name}' has no layer in cmake/modules.cmake")
  endif()
  set(own_layer ${GPURM_LAYER_${name}})
  set(module_targets "")
  foreach(dep IN LISTS ARG_MODULES)
    if(NOT DEFINED GPURM_LAYER_${dep})
      message(FATAL_ERROR "module '${name}' depends on unknown module '${dep}'")
    endif()
    if(NOT GPURM_LAYER_${dep} LESS own_layer)
      message(FATAL_ERROR "module '${name}' (layer ${own_layer}) may not depend on "
                          "'${dep}' (layer ${GPURM_LAYER_${dep}}): dependencies point down only")
    endif()
    list(APPEND module_targets gpurm_${dep})
  endforeach()
  add_library(gpurm_${name} STATIC ${ARG_SOURCES})
  target_include_directories(gpurm_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(gpurm_${name} PUBLIC ${module_targets} ${ARG_LIBS})
endfunction()

# gpurm_test(NAME SOURCES ... LIBS ...): a GoogleTest executable registered with ctest.
function(gpurm_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  if(NOT GPURM_BUILD_TESTS)
    return()
  endif()
  add_executable(${name} ${ARG_SOURCES})
  # Test helpers shared by unit and end-to-end tests (support/eventually.h).
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  # Tests find examples/ and the gpurm binary through these (one variable per
  # ENVIRONMENT property: a ';' would split the property list).
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
                       PROPERTIES ENVIRONMENT "GPURM_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  target_compile_definitions(${name} PRIVATE GPURM_DEFAULT_BINARY_DIR="${PROJECT_BINARY_DIR}")
endfunction()

# gpurm_uninstrumented(TARGET...): never built with sanitizers, whatever
# CMAKE_C_FLAGS say (scripts/sanitize.sh). For what stands in for code outside
# gpurm -- the CUDA guard preloaded into other people's programs, the fake
# driver and the probe "jobs" -- because a sanitizer runtime must come first
# in a process, which a library preloaded into an uninstrumented program (or
# ahead of an instrumented one's runtime) cannot arrange.
function(gpurm_uninstrumented)
  foreach(target IN LISTS ARGN)
    target_compile_options(${target} PRIVATE -fno-sanitize=all)
    target_link_options(${target} PRIVATE -fno-sanitize=all)
  endforeach()
endfunction()
