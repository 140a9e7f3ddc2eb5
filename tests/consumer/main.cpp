#include <eventsourced/eventsourced.hpp>

#include <iostream>

int main() {
  auto store = eventsourced::open("sqlite::memory:");
  auto docs = store->documents("things");
  docs.find_one_and_upsert({{"id", "a"}, {"n", 1}});
  auto r = docs.update_one("a", {{"$inc", {{"n", 41}}}});
  if (r.document["n"] != 42 || r.diff.version != 2) {
    std::cerr << "unexpected result: " << r.document.dump() << "\n";
    return 1;
  }
  std::cout << "consumer ok: " << r.document.dump() << "\n";
  return 0;
}
