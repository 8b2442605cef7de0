# The TCOS card simulator (`demail-sim card`). The card logic is a small static library of the
# simulator's own, so that tests/sim can exercise it directly; it is not a project library.
add_library(demail_sim_card_core STATIC
  ${CMAKE_CURRENT_LIST_DIR}/apdu.cpp
  ${CMAKE_CURRENT_LIST_DIR}/card_keys.cpp
  ${CMAKE_CURRENT_LIST_DIR}/card_state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/tcos_card.cpp)
target_include_directories(demail_sim_card_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(demail_sim_card_core PUBLIC OpenSSL::Crypto)

target_sources(demail-sim PRIVATE ${CMAKE_CURRENT_LIST_DIR}/card_main.cpp)
target_link_libraries(demail-sim PRIVATE demail_sim_card_core)
