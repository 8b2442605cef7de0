// Shared main() of the fuzz targets when they are built as regression runners (without
// -DDEMAIL_LIBFUZZER): every file in the corpus directories given is fed to the target once.
// With -DDEMAIL_LIBFUZZER -fsanitize=fuzzer libFuzzer provides main() instead (make fuzz).
#ifndef DEMAIL_LIBFUZZER
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    int files = 0;
    for (int i = 1; i < argc; ++i) {
        for (const auto& e : std::filesystem::recursive_directory_iterator(argv[i])) {
            if (!e.is_regular_file())
                continue;
            std::ifstream in(e.path(), std::ios::binary);
            std::vector<char> buf((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(buf.data()), buf.size());
            ++files;
        }
    }
    std::printf("replayed %d corpus files without a crash\n", files);
    return files > 0 ? 0 : 1;
}
#endif
