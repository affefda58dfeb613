"""Pools of Chinese names, streets and company words drawn once from a seeded Faker.

Faker is slow per call and its zh_CN lists are short, so a few thousand values are
drawn up front and rows sample from them with numpy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from faker import Faker

from quality.standards import divisions

HANGZHOU_PREFIX = "3301"
ROAD_WORDS = (
    "文一", "文二", "文三", "天目山", "古墩", "莫干山", "教工", "保俶", "曙光", "北山", "南山",
    "学院", "建设", "人民", "解放", "中山", "和平", "文化", "新华", "东风", "胜利", "幸福",
    "光明", "湖墅", "延安", "庆春", "凤起", "体育场", "环城", "江南", "滨盛", "丰潭", "紫荆花",
    "余杭塘", "西溪", "五常", "良睦", "文化", "振华", "金城", "市心", "育才", "迎宾", "桐君",
)
ROAD_SUFFIXES = ("路", "路", "路", "街", "大道", "巷")
INDUSTRIES = (
    "科技", "网络科技", "信息技术", "贸易", "商贸", "餐饮管理", "食品", "建筑工程", "装饰工程",
    "物业管理", "文化传媒", "电子商务", "机械制造", "服装", "纺织", "医药", "物流", "教育科技",
    "农业开发", "环保科技", "新材料", "生物科技", "咨询", "房地产开发", "供应链管理",
)
FORMS = ("有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司")
SHOP_TYPES = (
    "小吃店", "面馆", "早餐店", "便利店", "水果店", "烧烤店", "馄饨店", "快餐店", "奶茶店",
    "食品店", "粮油店", "超市", "茶叶店", "烟酒商行", "理发店", "五金店", "服装店", "副食品店",
)
FOOD_SHOP_TYPES = SHOP_TYPES[:13]
ETHNICITIES = (("汉族", 920), ("畲族", 15), ("回族", 10), ("土家族", 10), ("苗族", 10),
               ("满族", 8), ("壮族", 6), ("布依族", 5), ("侗族", 5), ("彝族", 4), ("蒙古族", 4),
               ("朝鲜族", 2), ("藏族", 1))
COMMON_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文斌浩宇轩欣怡子涵梓"


def _gbk_ok(text: str) -> bool:
    try:
        text.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Pools:
    surnames: tuple[str, ...]
    given_male: tuple[str, ...]
    given_female: tuple[str, ...]
    given_chars: tuple[str, ...]
    streets: tuple[str, ...]
    zihao: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def make_pools(seed: int) -> Pools:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    surnames = tuple(s for s in (fake.last_name() for _ in range(4000)) if len(s) == 1 and _gbk_ok(s))
    def given(pick) -> tuple[str, ...]:
        chars = sorted({c for _ in range(2000) for c in pick()} | set(COMMON_GIVEN))
        chars = [c for c in chars if _gbk_ok(c)]
        out = []
        for _ in range(3000):
            n = 1 if fake.random.random() < 0.2 else 2
            out.append("".join(fake.random.choice(chars) for _ in range(n)))
        return tuple(out)
    male = given(fake.first_name_male)
    female = given(fake.first_name_female)
    given_chars = tuple(sorted({c for g in male + female for c in g}))
    words = list(ROAD_WORDS) + [fake.city_name() for _ in range(80)] + [fake.last_name() + "家" for _ in range(40)]
    streets = tuple(sorted({w + fake.random.choice(ROAD_SUFFIXES) for w in words if _gbk_ok(w)}))
    zihao = set()
    for _ in range(3000):
        zihao.add(fake.company_prefix())
        zihao.add("".join(fake.random.choice(given_chars) for _ in range(2)))
    return Pools(surnames=surnames, given_male=male, given_female=female, given_chars=given_chars,
                 streets=streets, zihao=tuple(sorted(z for z in zihao if _gbk_ok(z) and all("\u4e00" <= c <= "\u9fff" for c in z))))


@functools.lru_cache(maxsize=1)
def division_places() -> dict[str, tuple[str, str]]:
    """County code -> (address prefix "省市区", county name) for every generator division."""
    from quality.standards import county_division_codes

    divs = divisions()
    out: dict[str, tuple[str, str]] = {}
    for code in county_division_codes():
        province, county, _ = divs[code]
        city = divs.get(code[:4] + "00", ("", "", False))[1]
        parts = [province]
        if city and city != province and city not in ("市辖区", "县") and "直辖" not in city:
            parts.append(city)
        parts.append(county)
        out[code] = ("".join(parts), county)
    return out


def hangzhou_counties() -> tuple[str, ...]:
    return tuple(c for c in division_places() if c.startswith(HANGZHOU_PREFIX))
