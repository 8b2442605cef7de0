# The durable spool, the sent journal (sent/, which `queue import` reads too) and the queue
# commands of demailctl.
add_library(demail_spool STATIC src/spool.cpp src/spool_free_pool.cpp src/sent_journal.cpp
  src/ctl_queue.cpp)
add_library(demail::spool ALIAS demail_spool)
target_include_directories(demail_spool PUBLIC include)
target_link_libraries(demail_spool PUBLIC demail::gateway_dispatch PRIVATE OpenSSL::Crypto)
