# demail-sim provider: De-Mail provider endpoint implementing docs/provider-api.md.
# Included from sim/CMakeLists.txt; links Poco and libxmlsec1 (no project libraries, DESIGN.md).
target_sources(demail-sim PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/provider_main.cpp
  ${CMAKE_CURRENT_LIST_DIR}/test_pki.cpp
  ${CMAKE_CURRENT_LIST_DIR}/provider_signer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/provider_state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/mime_util.cpp
  ${CMAKE_CURRENT_LIST_DIR}/https_api.cpp
  ${CMAKE_CURRENT_LIST_DIR}/provider_server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/control_api.cpp)
target_link_libraries(demail-sim PRIVATE Poco::Foundation Poco::Net Poco::NetSSL Poco::JSON
  PkgConfig::XMLSEC)
